//! The quantised model formats: q8 (a quarter of the f32 download) and q4 (about a seventh).
//!
//! `bert-tasks export --dtype q8` writes, in one ordinary `model.safetensors`:
//! - every large matrix (2-D `*.weight` with at least [`MIN_DIM`] rows and columns: the linear
//!   layers and the word/position embeddings) as `I8` `[rows, cols]` plus `<name>_scale`, `F32`
//!   `[rows]`: symmetric per-output-channel (per-row) scales, `w[r][c] ≈ q[r][c] · scale[r]`,
//!   `q ∈ [-127, 127]`;
//! - everything else (LayerNorm, biases, token-type embeddings, the task head, CRF transitions)
//!   as `F16`.
//!
//! `--dtype q4` writes the same large matrices block-wise 4-bit (`q4.rs`): `U8` `[rows, cols / 2]`
//! (two values per byte) plus `<name>_scale`, `F16` `[rows, cols / 32]`; a matrix whose width is
//! not a multiple of 32 falls back to the q8 form. Embeddings are 4-bit too: they are half of
//! MiniLM's weights, and with int8 embeddings the file could not go below 0.2× of f32.
//!
//! Any safetensors reader opens both. Our loader ([`load_quantized`]) keeps the encoder's
//! linear-layer matrices int8 (as raw `U8` tensors beside F32 per-row scales; q4 blocks are
//! re-quantised per row, an error far below the 4-bit one) for the int8 kernels (`int8/`,
//! through `encoder::Dense`) and turns the other matrices (embeddings, large heads) back into
//! f32; [`dequantize_kept`] turns the kept ones into f32 too where plain tensors are needed
//! (export, conversion).

use std::borrow::Cow;
use std::collections::HashMap;

use candle_core::safetensors::Load;
use candle_core::{DType, Device, Tensor};
use safetensors::tensor::{Dtype, TensorView, View};

use super::q4;
use crate::{Error, Result};

/// Matrices smaller than this on either side (classifier rows, token types, CRF) stay f16:
/// they are a negligible part of the download and the most sensitive to rounding.
pub const MIN_DIM: usize = 64;
/// The metadata entry that names the scheme (`q8-per-row-symmetric`, `q4-block32-symmetric`).
pub const METADATA_KEY: &str = "bert_tasks.quantization";
/// Suffix of the scale tensor that goes with an int8 matrix.
pub const SCALE_SUFFIX: &str = "_scale";

/// Whether `name`/`shape` is quantised by [`quantize`].
pub fn is_quantized_matrix(name: &str, shape: &[usize]) -> bool {
    name.ends_with(".weight") && shape.len() == 2 && shape[0] >= MIN_DIM && shape[1] >= MIN_DIM
}

/// Symmetric per-row int8: returns (q, scale) with `q` row-major `[rows, cols]`.
pub fn quantize_rows(w: &[f32], rows: usize, cols: usize) -> (Vec<i8>, Vec<f32>) {
    let mut q = vec![0i8; rows * cols];
    let mut scales = vec![0f32; rows];
    for r in 0..rows {
        let row = &w[r * cols..(r + 1) * cols];
        let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        scales[r] = scale;
        for (out, v) in q[r * cols..(r + 1) * cols].iter_mut().zip(row) {
            *out = (v / scale).round().clamp(-127.0, 127.0) as i8;
        }
    }
    (q, scales)
}

/// One tensor of the output file: raw bytes we produced, or a candle tensor.
enum Out {
    Raw { dtype: Dtype, shape: Vec<usize>, data: Vec<u8> },
    Candle(Tensor),
}

impl View for &Out {
    fn dtype(&self) -> Dtype {
        match self {
            Out::Raw { dtype, .. } => *dtype,
            Out::Candle(t) => View::dtype(t),
        }
    }
    fn shape(&self) -> &[usize] {
        match self {
            Out::Raw { shape, .. } => shape,
            Out::Candle(t) => t.dims(),
        }
    }
    fn data(&self) -> Cow<'_, [u8]> {
        match self {
            Out::Raw { data, .. } => Cow::Borrowed(data),
            Out::Candle(t) => View::data(t),
        }
    }
    fn data_len(&self) -> usize {
        match self {
            Out::Raw { data, .. } => data.len(),
            Out::Candle(t) => View::data_len(t),
        }
    }
}

/// Which quantised format [`quantize`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Q8,
    Q4,
}

impl Scheme {
    /// The `bert_tasks.quantization` metadata entry of the file.
    fn metadata(self) -> &'static str {
        match self {
            Scheme::Q8 => "q8-per-row-symmetric",
            Scheme::Q4 => "q4-block32-symmetric",
        }
    }
}

fn raw(dtype: Dtype, shape: Vec<usize>, data: Vec<u8>) -> Out {
    Out::Raw { dtype, shape, data }
}

/// Serialises `tensors` in the q8 or q4 format (see the module docs).
pub fn quantize(tensors: &HashMap<String, Tensor>, scheme: Scheme) -> Result<Vec<u8>> {
    let mut out: Vec<(String, Out)> = Vec::new();
    for (name, t) in tensors {
        let t = t.to_device(&Device::Cpu)?;
        if !t.dtype().is_float() {
            out.push((name.clone(), Out::Candle(t.contiguous()?)));
        } else if is_quantized_matrix(name, t.dims()) {
            let (rows, cols) = t.dims2()?;
            let w = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
            let scale_name = format!("{name}{SCALE_SUFFIX}");
            if scheme == Scheme::Q4 && cols % q4::BLOCK == 0 {
                let (packed, scales) = q4::quantize(&w, cols);
                out.push((name.clone(), raw(Dtype::U8, vec![rows, cols / 2], packed)));
                let data = scales.iter().flat_map(|s| s.to_le_bytes()).collect();
                out.push((scale_name, raw(Dtype::F16, vec![rows, cols / q4::BLOCK], data)));
            } else {
                let (q, scales) = quantize_rows(&w, rows, cols);
                out.push((name.clone(), raw(Dtype::I8, vec![rows, cols], q.into_iter().map(|v| v as u8).collect())));
                let data = scales.iter().flat_map(|s| s.to_le_bytes()).collect();
                out.push((scale_name, raw(Dtype::F32, vec![rows], data)));
            }
        } else {
            out.push((name.clone(), Out::Candle(t.to_dtype(DType::F16)?.contiguous()?)));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let mut metadata = HashMap::new();
    metadata.insert("format".to_string(), "pt".to_string());
    metadata.insert(METADATA_KEY.to_string(), scheme.metadata().to_string());
    safetensors::tensor::serialize(out.iter().map(|(n, o)| (n.as_str(), o)), Some(metadata))
        .map_err(|e| Error::Weights(format!("serialising the {scheme:?} model: {e}")))
}

/// Whether a safetensors file is a q8 or q4 export: our metadata entry, an `I8` tensor, or a `U8`
/// one with a `_scale` beside it. `None` if it does not parse (the ordinary loader then says why).
pub fn is_quantized_file(bytes: &[u8]) -> Option<bool> {
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes).ok()?;
    if meta.metadata().as_ref().is_some_and(|m| m.contains_key(METADATA_KEY)) {
        return Some(true);
    }
    let tensors = meta.tensors();
    Some(tensors.iter().any(|(name, info)| {
        info.dtype == Dtype::I8 || (info.dtype == Dtype::U8 && tensors.contains_key(&format!("{name}{SCALE_SUFFIX}")))
    }))
}

/// Whether the loader keeps `name` int8 for the int8 kernels: the linear layers of the encoder's
/// transformer layers (the ones `encoder::Dense` loads). Not embeddings (looked up row by row),
/// heads, or the pooler: it runs on one row per text, so int8 saves nothing there, while its
/// rounding reaches the classifier undamped.
pub fn keeps_int8(name: &str) -> bool {
    name.ends_with(".weight") && name.contains("encoder.layer.")
}

/// Reads a q8 or q4 file: the matrices [`keeps_int8`] picks as raw `U8` tensors (int8 bytes) with
/// F32 per-row scales, the other quantised matrices back in f32, the rest as stored. A q4 matrix
/// kept for the int8 kernels is re-quantised per row: its 15 levels per block fit in int8's 255
/// per row with an error below a tenth of the 4-bit step (so q4 runs at q8's speed and its
/// accuracy is the 4-bit one). A missing or misshaped scale is an error naming the tensor.
pub fn load_quantized(bytes: &[u8], source: &str) -> Result<HashMap<String, Tensor>> {
    let err = |m: String| Error::Weights(format!("{source}: {m}"));
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| err(e.to_string()))?;
    let views: HashMap<String, TensorView> = st.tensors().into_iter().collect();
    let is_q4 = |name: &str, v: &TensorView| v.dtype() == Dtype::U8 && views.contains_key(&format!("{name}{SCALE_SUFFIX}"));
    let mut tensors = HashMap::new();
    for (name, view) in &views {
        let scale_name = format!("{name}{SCALE_SUFFIX}");
        let quantized = view.dtype() == Dtype::I8 || is_q4(name, view);
        if quantized {
            let &[rows, stored_cols] = view.shape() else {
                return Err(err(format!("quantised tensor {name} has shape {:?}; only 2-D matrices are quantised", view.shape())));
            };
            let scale = views
                .get(&scale_name)
                .ok_or_else(|| err(format!("quantised tensor {name} has no {scale_name} (its scales)")))?;
            let (w, cols) = if view.dtype() == Dtype::I8 {
                let cols = stored_cols;
                if scale.shape() != [rows] || scale.dtype() != Dtype::F32 {
                    return Err(err(format!(
                        "{scale_name} must be F32 [{rows}] for {name} [{rows}, {cols}], found {:?} {:?}",
                        scale.dtype(),
                        scale.shape()
                    )));
                }
                let scales: Vec<f32> = scale.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                if keeps_int8(name) {
                    tensors.insert(name.clone(), Tensor::from_vec(view.data().to_vec(), (rows, cols), &Device::Cpu)?);
                    tensors.insert(scale_name, Tensor::from_vec(scales, rows, &Device::Cpu)?);
                    continue;
                }
                (dequantize_rows(view.data(), &scales, cols), cols)
            } else {
                let cols = stored_cols * 2;
                let blocks = cols / q4::BLOCK;
                if cols % q4::BLOCK != 0 || scale.shape() != [rows, blocks] || scale.dtype() != Dtype::F16 {
                    return Err(err(format!(
                        "{scale_name} must be F16 [{rows}, {blocks}] for the 4-bit {name} [{rows}, {stored_cols}] ({cols} columns, blocks of {}), found {:?} {:?}",
                        q4::BLOCK,
                        scale.dtype(),
                        scale.shape()
                    )));
                }
                let scales: Vec<half::f16> = scale.data().chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]])).collect();
                let w = q4::dequantize(view.data(), &scales);
                if keeps_int8(name) {
                    let (q, s) = quantize_rows(&w, rows, cols);
                    tensors.insert(name.clone(), Tensor::from_vec(q.into_iter().map(|v| v as u8).collect::<Vec<u8>>(), (rows, cols), &Device::Cpu)?);
                    tensors.insert(scale_name, Tensor::from_vec(s, rows, &Device::Cpu)?);
                    continue;
                }
                (w, cols)
            };
            tensors.insert(name.clone(), Tensor::from_vec(w, (rows, cols), &Device::Cpu)?);
        } else if name
            .strip_suffix(SCALE_SUFFIX)
            .and_then(|m| views.get_key_value(m))
            .is_some_and(|(m, v)| v.dtype() == Dtype::I8 || is_q4(m, v))
        {
            continue; // read with its matrix
        } else if view.dtype() == Dtype::U8 && name.ends_with(".weight") {
            // A q4 matrix whose scales are gone: without this it would load as bytes and fail
            // later as a shape mismatch that does not say why.
            return Err(err(format!("4-bit tensor {name} has no {scale_name} (its per-block scales)")));
        } else {
            let t = view.load(&Device::Cpu).map_err(|e| err(format!("tensor {name}: {}", crate::error::clean(&e))))?;
            tensors.insert(name.clone(), t);
        }
    }
    Ok(tensors)
}

fn dequantize_rows(q: &[u8], scales: &[f32], cols: usize) -> Vec<f32> {
    let mut w = Vec::with_capacity(scales.len() * cols);
    for (row, s) in q.chunks_exact(cols).zip(scales) {
        w.extend(row.iter().map(|&v| v as i8 as f32 * s));
    }
    w
}

/// Turns the int8 matrices [`load_quantized`] kept (raw `U8` + scale) into f32, dropping the scales.
pub fn dequantize_kept(mut tensors: HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>> {
    let kept: Vec<String> = tensors
        .keys()
        .filter(|n| tensors.get(*n).is_some_and(|t| t.dtype() == DType::U8) && tensors.contains_key(&format!("{n}{SCALE_SUFFIX}")))
        .cloned()
        .collect();
    for name in kept {
        let scale: Vec<f32> = tensors.remove(&format!("{name}{SCALE_SUFFIX}")).expect("checked").to_vec1()?;
        let q = &tensors[&name];
        let (rows, cols) = q.dims2()?;
        let w = dequantize_rows(&q.flatten_all()?.to_vec1::<u8>()?, &scale, cols);
        tensors.insert(name, Tensor::from_vec(w, (rows, cols), &Device::Cpu)?);
    }
    Ok(tensors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_row_rounding_error_is_at_most_half_a_step() {
        let (rows, cols) = (3, 70);
        let w: Vec<f32> = (0..rows * cols).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.01 * (1 + i / cols) as f32).collect();
        let (q, s) = quantize_rows(&w, rows, cols);
        for r in 0..rows {
            let max = w[r * cols..(r + 1) * cols].iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!((s[r] - max / 127.0).abs() < 1e-7, "scale of row {r}");
            for c in 0..cols {
                let back = q[r * cols + c] as f32 * s[r];
                assert!((back - w[r * cols + c]).abs() <= s[r] / 2.0 + 1e-6, "row {r} col {c}");
            }
        }
        let (q, s) = quantize_rows(&[0.0; 4], 1, 4);
        assert_eq!((q, s), (vec![0; 4], vec![1.0]), "an all-zero row");
    }

    #[test]
    fn q8_file_round_trips_and_bad_scales_are_named() {
        let w: Vec<f32> = (0..64 * 80).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut tensors = HashMap::new();
        tensors.insert("a.dense.weight".to_string(), Tensor::from_vec(w.clone(), (64, 80), &Device::Cpu).unwrap());
        tensors.insert("a.dense.bias".to_string(), Tensor::from_vec(vec![0.5f32; 64], 64, &Device::Cpu).unwrap());
        tensors.insert("classifier.weight".to_string(), Tensor::from_vec(vec![0.25f32; 2 * 80], (2, 80), &Device::Cpu).unwrap());
        let bytes = quantize(&tensors, Scheme::Q8).unwrap();
        assert_eq!(is_quantized_file(&bytes), Some(true));
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("a.dense.weight").unwrap().dtype(), Dtype::I8);
        assert_eq!(st.tensor("a.dense.weight_scale").unwrap().shape(), [64]);
        assert_eq!(st.tensor("classifier.weight").unwrap().dtype(), Dtype::F16, "small matrices stay f16");
        let back = load_quantized(&bytes, "m").unwrap();
        assert_eq!(back.len(), 3, "scales are folded in, not returned");
        let got = back["a.dense.weight"].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let worst = got.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst <= 1.0 / 127.0 / 2.0 + 1e-6, "max error {worst}");

        // An encoder linear layer stays int8 (raw bytes + scale) for the int8 kernels, and
        // dequantize_kept gives the same f32 as the other matrices get.
        let mut enc = tensors.clone();
        enc.insert("encoder.layer.0.output.dense.weight".into(), enc["a.dense.weight"].clone());
        let kept = load_quantized(&quantize(&enc, Scheme::Q8).unwrap(), "m").unwrap();
        assert_eq!(kept["encoder.layer.0.output.dense.weight"].dtype(), DType::U8);
        assert_eq!(kept["encoder.layer.0.output.dense.weight_scale"].dims(), [64]);
        let plain = dequantize_kept(kept).unwrap();
        assert!(!plain.contains_key("encoder.layer.0.output.dense.weight_scale"));
        let a = plain["encoder.layer.0.output.dense.weight"].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(a, got);

        // Scales missing, or of the wrong length: the message names the tensor.
        let strip = |keep: &dyn Fn(&str) -> bool, scale: Option<Vec<f32>>| {
            let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
            let mut raw: Vec<(String, Out)> = st
                .tensors()
                .into_iter()
                .filter(|(n, _)| keep(n))
                .map(|(n, v)| (n, Out::Raw { dtype: v.dtype(), shape: v.shape().to_vec(), data: v.data().to_vec() }))
                .collect();
            if let Some(s) = scale {
                let data = s.iter().flat_map(|v| v.to_le_bytes()).collect();
                raw.push(("a.dense.weight_scale".into(), Out::Raw { dtype: Dtype::F32, shape: vec![s.len()], data }));
            }
            safetensors::tensor::serialize(raw.iter().map(|(n, o)| (n.as_str(), o)), None).unwrap()
        };
        let missing = strip(&|n| n != "a.dense.weight_scale", None);
        let e = load_quantized(&missing, "m.safetensors").err().unwrap().to_string();
        assert!(e.contains("m.safetensors") && e.contains("a.dense.weight") && e.contains("a.dense.weight_scale"), "{e}");
        let short = strip(&|n| n != "a.dense.weight_scale", Some(vec![1.0; 10]));
        let e = load_quantized(&short, "m.safetensors").err().unwrap().to_string();
        assert!(e.contains("a.dense.weight_scale must be F32 [64]"), "{e}");
    }

    #[test]
    fn q4_file_round_trips_and_falls_back_to_q8_on_odd_widths() {
        let (rows, cols) = (64, 96);
        let w: Vec<f32> = (0..rows * cols).map(|i| (i as f32 * 0.37).sin() * (1.0 + (i % 7) as f32)).collect();
        let mut tensors = HashMap::new();
        tensors.insert("embeddings.word_embeddings.weight".to_string(), Tensor::from_vec(w.clone(), (rows, cols), &Device::Cpu).unwrap());
        tensors.insert("encoder.layer.0.intermediate.dense.weight".to_string(), Tensor::from_vec(w.clone(), (rows, cols), &Device::Cpu).unwrap());
        // 80 columns: not a whole number of 32-blocks, so it is written in the q8 form.
        tensors.insert("odd.weight".to_string(), Tensor::from_vec(w[..64 * 80].to_vec(), (64, 80), &Device::Cpu).unwrap());
        let bytes = quantize(&tensors, Scheme::Q4).unwrap();
        assert_eq!(is_quantized_file(&bytes), Some(true));
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let emb = st.tensor("embeddings.word_embeddings.weight").unwrap();
        assert_eq!((emb.dtype(), emb.shape()), (Dtype::U8, &[rows, cols / 2][..]));
        let scale = st.tensor("embeddings.word_embeddings.weight_scale").unwrap();
        assert_eq!((scale.dtype(), scale.shape()), (Dtype::F16, &[rows, cols / q4::BLOCK][..]));
        assert_eq!(st.tensor("odd.weight").unwrap().dtype(), Dtype::I8);
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(meta.metadata().as_ref().unwrap()[METADATA_KEY], "q4-block32-symmetric");

        let back = load_quantized(&bytes, "m").unwrap();
        // Embeddings come back as f32 within half a 4-bit step of their block.
        let (packed, scales) = q4::quantize(&w, cols);
        let expected = q4::dequantize(&packed, &scales);
        let got = back["embeddings.word_embeddings.weight"].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(got, expected);
        // The encoder's matrix is kept int8 for the kernels: per-row re-quantisation of the 4-bit
        // values adds at most half an int8 step of the row.
        let layer = "encoder.layer.0.intermediate.dense.weight";
        assert_eq!(back[layer].dtype(), DType::U8);
        let plain = dequantize_kept(back).unwrap();
        let kept = plain[layer].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for r in 0..rows {
            let row = &expected[r * cols..(r + 1) * cols];
            let step = row.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            for (a, b) in kept[r * cols..(r + 1) * cols].iter().zip(row) {
                assert!((a - b).abs() <= step / 2.0 + 1e-6, "row {r}: {a} vs {b}");
            }
        }
        assert_eq!(plain["odd.weight"].dims(), [64, 80]);

        // A misshaped block-scale tensor is named with the shape it must have.
        let bad: Vec<(String, Out)> = st
            .tensors()
            .into_iter()
            .map(|(n, v)| {
                let (shape, data) = if n == "embeddings.word_embeddings.weight_scale" {
                    (vec![rows], v.data()[..rows * 2].to_vec())
                } else {
                    (v.shape().to_vec(), v.data().to_vec())
                };
                (n, Out::Raw { dtype: v.dtype(), shape, data })
            })
            .collect();
        let bad = safetensors::tensor::serialize(bad.iter().map(|(n, o)| (n.as_str(), o)), None).unwrap();
        let e = load_quantized(&bad, "m.safetensors").err().unwrap().to_string();
        assert!(e.contains("m.safetensors") && e.contains("embeddings.word_embeddings.weight_scale must be F16 [64, 3]"), "{e}");
    }
}
