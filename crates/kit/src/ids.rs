//! Ids are UUIDv7: unique without coordination between nodes, and sortable by creation
//! time, which is what cursor pagination orders by.

use uuid::Uuid;

pub fn new_id() -> Uuid {
    Uuid::now_v7()
}
