-- Rewards belong to campaigns (crates/engage/src/rewards): a reward may name the campaign
-- it is part of; it is then claimable only while that campaign is live and the customer
-- is in its audience. NULL: a reward of its own, claimable by every customer in its window.
ALTER TABLE rewards ADD COLUMN campaign_id TEXT;
