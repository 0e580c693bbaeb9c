//! Text pre-processing: the bundle's `tokenizer.json` (Hugging Face `tokenizers`) turns strings
//! into token ids packed end to end — no padding — with per-sequence offsets.
//!
//! The graph of a text model takes four inputs, bound by name: `input_ids`, `token_type_ids`,
//! `position_ids` (all `[tokens]`) and `sequence_offsets` (`[batch + 1]`; sequence `s` is tokens
//! `offsets[s]..offsets[s+1]`). Outputs keep the input order.

use tokenizers::{Encoding, Tokenizer, TruncationParams};

use crate::error::{Error, Result};
use crate::format::{Bundle, DType, TextSpec};

/// Texts per parallel tokenization task.
const TEXTS_PER_TASK: usize = 16;

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

    /// Sequences `range` as a batch of their own (offsets from 0).
    pub(crate) fn pass(&self, range: std::ops::Range<usize>) -> TokenBatch {
        let (a, b) = (self.offsets[range.start] as usize, self.offsets[range.end] as usize);
        let base = self.offsets[range.start];
        TokenBatch {
            ids: self.ids[a..b].to_vec(),
            type_ids: self.type_ids[a..b].to_vec(),
            positions: self.positions[a..b].to_vec(),
            offsets: self.offsets[range.start..=range.end].iter().map(|o| o - base).collect(),
        }
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

    /// Tokenizes `texts` into one packed batch, in input order; a text that cannot be tokenized
    /// is an error naming its row (the first such row).
    ///
    /// Texts are encoded one by one on Ingot's pool (`crate::parallel`), in chunks of
    /// [`TEXTS_PER_TASK`]; the `tokenizers` crate's own rayon pool is never used, so one pool
    /// shares the cores.
    pub(crate) fn encode(&self, texts: &[&str]) -> Result<TokenBatch> {
        let mut encodings: Vec<Option<Encoding>> = vec![None; texts.len()];
        let encode_rows = |first: usize, out: &mut [Option<Encoding>]| {
            for (i, slot) in out.iter_mut().enumerate() {
                let row = first + i;
                let e = self.tokenizer.encode(texts[row], true);
                *slot = Some(e.map_err(|e| Error::Text { row, detail: e.to_string() })?);
            }
            Ok(())
        };
        if texts.len() <= TEXTS_PER_TASK {
            encode_rows(0, &mut encodings)?;
        } else {
            crate::parallel::try_for_each_chunk_mut(&mut encodings, TEXTS_PER_TASK, |c, part| {
                encode_rows(c * TEXTS_PER_TASK, part)
            })?;
        }
        let encodings: Vec<Encoding> = encodings.into_iter().flatten().collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A word-level tokenizer that knows `a` and `b` and has no unknown token, so any other
    /// word fails to encode.
    fn pipeline() -> TextPipeline {
        let json = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
            "normalizer":null,"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,
            "decoder":null,"model":{"type":"WordLevel","vocab":{"a":0,"b":1},"unk_token":"[UNK]"}}"#;
        TextPipeline { tokenizer: Tokenizer::from_bytes(json).unwrap() }
    }

    #[test]
    fn a_text_that_fails_to_tokenize_names_its_row() {
        let p = pipeline();
        let batch = p.encode(&["a b", "b", "a a a"]).unwrap();
        assert_eq!(batch.offsets, [0, 2, 3, 6]);
        assert_eq!(batch.sequence(2), [0, 0, 0]);
        // Serial (few texts) and parallel (more than one task's worth) paths.
        for n in [4, 3 * TEXTS_PER_TASK + 5] {
            let mut texts = vec!["a b"; n];
            texts[n - 2] = "a c";
            texts[n - 1] = "zzz";
            match p.encode(&texts) {
                Err(Error::Text { row, .. }) => assert_eq!(row, n - 2, "{n} texts"),
                other => panic!("{n} texts: {other:?}"),
            }
        }
    }
}
