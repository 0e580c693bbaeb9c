//! Importers that need no Python: read a trained model in its native layout and produce an
//! `.ingot` manifest and tensors.

pub mod hf;
