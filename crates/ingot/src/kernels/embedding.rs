//! Embedding lookup (`Gather` on a constant table): `out[t] = table[ids[t]]`, table read in place.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape};

use crate::format::F32Data;

/// A `[rows, dim]` table, usually borrowed from the mapped file.
#[derive(Debug, Clone)]
pub(crate) struct Embedding {
    pub(crate) table: F32Data,
    pub(crate) rows: usize,
    pub(crate) dim: usize,
}

impl CustomOp1 for Embedding {
    fn name(&self) -> &'static str {
        "ingot-embedding"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::U32(ids) = s else { candle_core::bail!("ingot-embedding: ids must be u32") };
        let Some((a, b)) = l.contiguous_offsets() else {
            candle_core::bail!("ingot-embedding: ids must be contiguous")
        };
        let ids = &ids[a..b];
        let table = self.table.as_slice();
        let mut out = Vec::with_capacity(ids.len() * self.dim);
        for &id in ids {
            let id = id as usize;
            if id >= self.rows {
                candle_core::bail!(
                    "ingot-embedding: id {id} is out of range for a table of {} rows",
                    self.rows
                );
            }
            out.extend_from_slice(&table[id * self.dim..(id + 1) * self.dim]);
        }
        Ok((CpuStorage::F32(out), Shape::from((ids.len(), self.dim))))
    }
}
