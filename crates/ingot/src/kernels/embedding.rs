//! Embedding lookup (`Gather` on a constant table): `out[t] = table[ids[t]]`, table read in place.

use crate::storage::F32Data;

/// A `[rows, dim]` table, usually borrowed from the mapped file.
#[derive(Debug, Clone)]
pub(crate) struct Embedding {
    pub(crate) table: F32Data,
    pub(crate) rows: usize,
    pub(crate) dim: usize,
}

impl Embedding {
    /// Writes row `ids[t]` of the table to row `t` of `out` (`[ids.len(), dim]`); an id past the
    /// table is an error naming it, and leaves `out` partly written.
    ///
    /// # Panics
    /// If `out` is not `ids.len() × dim` values.
    pub(crate) fn forward(&self, ids: &[u32], out: &mut [f32]) -> Result<(), String> {
        assert_eq!(out.len(), ids.len() * self.dim, "embedding: output size");
        let table = self.table.as_slice();
        for (&id, o) in ids.iter().zip(out.chunks_exact_mut(self.dim.max(1))) {
            let id = id as usize;
            let row = table
                .get(id * self.dim..(id + 1) * self.dim)
                .filter(|_| id < self.rows)
                .ok_or_else(|| format!("id {id} is out of range for a table of {} rows", self.rows))?;
            o.copy_from_slice(row);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathers_rows_and_names_a_bad_id() {
        let e = Embedding { table: F32Data::from(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), rows: 3, dim: 2 };
        let mut out = vec![f32::NAN; 4];
        e.forward(&[2, 0], &mut out).unwrap();
        assert_eq!(out, [5.0, 6.0, 1.0, 2.0]);
        let err = e.forward(&[3, 0], &mut out).unwrap_err();
        assert!(err.contains("id 3"), "{err}");
    }
}
