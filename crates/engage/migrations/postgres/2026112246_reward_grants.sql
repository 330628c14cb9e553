-- Granted rewards (crates/engage/src/rewards): a prize issued by a rule, an invite unlock
-- or a team challenge is a claim that charged no points, so a claim's points may now be 0.
ALTER TABLE reward_claims DROP CONSTRAINT reward_claims_points_check;
ALTER TABLE reward_claims ADD CONSTRAINT reward_claims_points_check CHECK (points >= 0);
