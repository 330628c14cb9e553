-- Personal data at rest (crates/identity/src/vault.rs): the clear columns become sealed
-- ones, the phone column becomes its blind index, and each row carries its data key
-- wrapped under the master key `key_id`. Rows from before this migration keep their clear
-- values with key_id NULL until the server seals them at start (or `huoban keys rotate`).
ALTER TABLE customers RENAME COLUMN phone TO phone_index;
ALTER TABLE customers RENAME COLUMN name TO name_sealed;
ALTER TABLE customers RENAME COLUMN birthday TO birthday_sealed;
ALTER TABLE customers ADD COLUMN phone_sealed TEXT;
ALTER TABLE customers ADD COLUMN id_number_sealed TEXT;
ALTER TABLE customers ADD COLUMN data_key TEXT;
ALTER TABLE customers ADD COLUMN key_id TEXT;
ALTER TABLE customers ADD COLUMN erased_at INTEGER;
CREATE INDEX customers_key_id ON customers (key_id);
