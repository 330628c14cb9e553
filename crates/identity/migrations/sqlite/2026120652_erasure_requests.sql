-- An erasure is recorded as requested before any capability erases its part, so one that
-- stopped half-way (a crash, a capability that failed) is finished later by the server
-- (`IdentityService::resume_erasures`) or by the customer's retry.
ALTER TABLE customers ADD COLUMN erasure_requested_at INTEGER;
CREATE INDEX customers_erasure_pending ON customers (erasure_requested_at)
    WHERE erasure_requested_at IS NOT NULL AND erased_at IS NULL;
