//! Row counts of every table, for `doorward`'s own checks ("bad input changes nothing")
//! and for operators comparing two databases.

use super::{Pool, Store, StoreError, StoreResult, on_pool};

impl Store {
    /// The application tables (migration bookkeeping excluded), sorted by name.
    pub async fn table_names(&self) -> StoreResult<Vec<String>> {
        let names: Vec<String> = match &self.pool {
            Pool::Sqlite { read, .. } => {
                sqlx::query_scalar(
                    "SELECT name FROM sqlite_master WHERE type = 'table' \
                     AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%' ORDER BY name",
                )
                .fetch_all(read)
                .await?
            }
            Pool::Postgres(p) => {
                sqlx::query_scalar(
                    "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() \
                     AND tablename NOT LIKE '_sqlx%' ORDER BY tablename",
                )
                .fetch_all(p)
                .await?
            }
        };
        Ok(names)
    }

    /// The number of rows in `table`, which must be one of [`Store::table_names`].
    pub async fn count_rows(&self, table: &str) -> StoreResult<i64> {
        if !self.table_names().await?.iter().any(|t| t == table) {
            return Err(StoreError::NotFound);
        }
        self.count_rows_of_known(table).await
    }

    /// `(table, rows)` for every table.
    pub async fn count_all_rows(&self) -> StoreResult<Vec<(String, i64)>> {
        let mut counts = Vec::new();
        for table in self.table_names().await? {
            let rows = self.count_rows_of_known(&table).await?;
            counts.push((table, rows));
        }
        Ok(counts)
    }

    async fn count_rows_of_known(&self, table: &str) -> StoreResult<i64> {
        // Only names read from the catalogue get here, so splicing one is safe.
        let sql = format!("SELECT COUNT(*) FROM \"{table}\"");
        Ok(
            on_pool!(self, p => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())).fetch_one(p).await)?,
        )
    }
}
