//! Symbolic shapes for load-time inference: each dimension is fixed or variable (`-1`).

use std::fmt;

/// One dimension: known at load time, or only at predict time (the batch).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dim {
    Fixed(usize),
    Var,
}

impl fmt::Debug for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(d) => write!(f, "{d}"),
            Dim::Var => f.write_str("-1"),
        }
    }
}

impl Dim {
    /// The size, if it is known at load time.
    pub(crate) fn fixed(self) -> Option<usize> {
        match self {
            Dim::Fixed(d) => Some(d),
            Dim::Var => None,
        }
    }
}

pub(crate) type Shape = Vec<Dim>;

/// NumPy broadcasting of two shapes; a variable dimension is assumed compatible.
pub(crate) fn broadcast(a: &[Dim], b: &[Dim]) -> Result<Shape, String> {
    let rank = a.len().max(b.len());
    let pad = |s: &[Dim]| -> Shape {
        std::iter::repeat_n(Dim::Fixed(1), rank - s.len()).chain(s.iter().copied()).collect()
    };
    let (a2, b2) = (pad(a), pad(b));
    a2.iter()
        .zip(&b2)
        .map(|(&x, &y)| match (x, y) {
            (Dim::Fixed(p), Dim::Fixed(q)) if p == q => Ok(Dim::Fixed(p)),
            (Dim::Fixed(1), other) | (other, Dim::Fixed(1)) => Ok(other),
            (Dim::Var, Dim::Var) => Ok(Dim::Var),
            (Dim::Var, f @ Dim::Fixed(_)) | (f @ Dim::Fixed(_), Dim::Var) => Ok(f),
            _ => Err(format!("shapes {a:?} and {b:?} do not broadcast")),
        })
        .collect()
}

/// Resolves a possibly negative axis against a rank.
pub(crate) fn axis(axis: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) {
        Ok(a as usize)
    } else {
        Err(format!("axis {axis} is out of range for rank {rank}"))
    }
}
