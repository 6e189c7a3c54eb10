//! The database's size, as `/metrics` shows it.

use crate::common::*;
use flowd_store::{Store, StoreWrite};

pub async fn database_size_grows_with_what_is_stored(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let before = store.database_size().await.unwrap();
    assert!(before > 0, "an open database takes some space");
    // Output under PostgreSQL's TOAST threshold and not compressible: kept in the table's pages.
    let writes: Vec<StoreWrite> = (0..400)
        .map(|_| {
            let mut record = execution(&workflow.id, new_id());
            record.fire_at = None;
            record.logs = (0..40).map(|_| new_id()).collect();
            StoreWrite::PutExecution(record)
        })
        .collect();
    store.commit(&writes).await.unwrap();
    let after = store.database_size().await.unwrap();
    assert!(
        after >= before + 400 * 1024,
        "{} executions of about 1.4 KiB each grew the database from {before} to {after} bytes",
        writes.len()
    );
}
