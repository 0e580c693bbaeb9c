//! Text pre-processing: the bundle's `tokenizer.json` (Hugging Face `tokenizers`) turns strings
//! into token ids packed end to end — no padding — with per-sequence offsets.
//!
//! The graph of a text model takes four inputs, bound by name: `input_ids`, `token_type_ids`,
//! `position_ids` (all `[tokens]`) and `sequence_offsets` (`[batch + 1]`; sequence `s` is tokens
//! `offsets[s]..offsets[s+1]`). Outputs keep the input order.

use tokenizers::{Tokenizer, TruncationParams};

use crate::error::{Error, Result};
use crate::format::{Bundle, DType, TextSpec};

/// Names of the graph inputs a text pipeline feeds.
pub(crate) const TEXT_INPUTS: [&str; 4] = ["input_ids", "token_type_ids", "position_ids", "sequence_offsets"];

/// A batch of tokenized sequences, packed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TokenBatch {
    /// Token ids of all sequences, end to end.
    pub ids: Vec<u32>,
    /// Segment (token type) ids, aligned with `ids`.
    pub type_ids: Vec<u32>,
    /// Position of each token within its sequence.
    pub positions: Vec<u32>,
    /// `batch + 1` offsets into `ids`.
    pub offsets: Vec<u32>,
}

impl TokenBatch {
    /// The token ids of sequence `i`.
    pub fn sequence(&self, i: usize) -> &[u32] {
        &self.ids[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    /// The four graph inputs by name.
    pub(crate) fn input(&self, name: &str) -> Option<&[u32]> {
        Some(match name {
            "input_ids" => &self.ids,
            "token_type_ids" => &self.type_ids,
            "position_ids" => &self.positions,
            "sequence_offsets" => &self.offsets,
            _ => return None,
        })
    }
}

/// A validated text pipeline.
pub(crate) struct TextPipeline {
    tokenizer: Tokenizer,
}

impl std::fmt::Debug for TextPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextPipeline").finish_non_exhaustive()
    }
}

impl TextPipeline {
    /// Loads the tokenizer stored in the bundle and sets truncation (no padding).
    pub(crate) fn compile(spec: &TextSpec, bundle: &Bundle, field: &str) -> Result<Self> {
        let view = bundle.tensor(&spec.tokenizer).ok_or_else(|| Error::TensorMissing {
            name: spec.tokenizer.clone(),
            needed_by: field.to_owned(),
        })?;
        if view.dtype != DType::U8 {
            return Err(Error::manifest(field, format!("tokenizer tensor `{}` must be U8", spec.tokenizer)));
        }
        if spec.max_length < 2 {
            return Err(Error::manifest(field, "max_length must be at least 2"));
        }
        let mut tokenizer = Tokenizer::from_bytes(view.data).map_err(|e| {
            Error::manifest(field, format!("tokenizer `{}` does not load: {e}", spec.tokenizer))
        })?;
        let truncation = TruncationParams { max_length: spec.max_length, ..TruncationParams::default() };
        tokenizer
            .with_truncation(Some(truncation))
            .map_err(|e| Error::manifest(field, format!("truncation: {e}")))?
            .with_padding(None);
        Ok(TextPipeline { tokenizer })
    }

    /// Tokenizes `texts` into one packed batch, in input order.
    pub(crate) fn encode(&self, texts: &[&str]) -> Result<TokenBatch> {
        let encodings = if texts.len() == 1 {
            vec![self
                .tokenizer
                .encode(texts[0], true)
                .map_err(|e| Error::Text { row: 0, detail: e.to_string() })?]
        } else {
            self.tokenizer
                .encode_batch(texts.to_vec(), true)
                .map_err(|e| Error::Text { row: 0, detail: e.to_string() })?
        };
        let total: usize = encodings.iter().map(|e| e.get_ids().len()).sum();
        let mut batch = TokenBatch {
            ids: Vec::with_capacity(total),
            type_ids: Vec::with_capacity(total),
            positions: Vec::with_capacity(total),
            offsets: Vec::with_capacity(texts.len() + 1),
        };
        batch.offsets.push(0);
        for e in &encodings {
            batch.ids.extend_from_slice(e.get_ids());
            batch.type_ids.extend_from_slice(e.get_type_ids());
            batch.positions.extend(0..e.get_ids().len() as u32);
            batch.offsets.push(batch.ids.len() as u32);
        }
        Ok(batch)
    }
}
