//! The q8 model format: a quarter of the f32 download.
//!
//! `bert-tasks export --dtype q8` writes, in one ordinary `model.safetensors`:
//! - every large matrix (2-D `*.weight` with at least [`MIN_DIM`] rows and columns: the linear
//!   layers and the word/position embeddings) as `I8` `[rows, cols]` plus `<name>_scale`, `F32`
//!   `[rows]`: symmetric per-output-channel (per-row) scales, `w[r][c] ≈ q[r][c] · scale[r]`,
//!   `q ∈ [-127, 127]`;
//! - everything else (LayerNorm, biases, token-type embeddings, the task head, CRF transitions)
//!   as `F16`.
//!
//! Any safetensors reader opens it. Our loader ([`load_q8`]) keeps the encoder's linear-layer
//! matrices int8 (as raw `U8` tensors beside their scales) for the int8 kernels (`int8.rs`,
//! through `encoder::Dense`) and turns the other int8 matrices (embeddings, large heads) back
//! into f32; [`dequantize_kept`] turns the kept ones into f32 too where plain tensors are needed
//! (export, conversion).

use std::borrow::Cow;
use std::collections::HashMap;

use candle_core::safetensors::Load;
use candle_core::{DType, Device, Tensor};
use safetensors::tensor::{Dtype, TensorView, View};

use crate::{Error, Result};

/// Matrices smaller than this on either side (classifier rows, token types, CRF) stay f16:
/// they are a negligible part of the download and the most sensitive to rounding.
pub const MIN_DIM: usize = 64;
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

/// Serialises `tensors` in the q8 format (see the module docs).
pub fn quantize(tensors: &HashMap<String, Tensor>) -> Result<Vec<u8>> {
    let mut out: Vec<(String, Out)> = Vec::new();
    for (name, t) in tensors {
        let t = t.to_device(&Device::Cpu)?;
        if !t.dtype().is_float() {
            out.push((name.clone(), Out::Candle(t.contiguous()?)));
        } else if is_quantized_matrix(name, t.dims()) {
            let (rows, cols) = t.dims2()?;
            let w = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
            let (q, scales) = quantize_rows(&w, rows, cols);
            let data = q.into_iter().map(|v| v as u8).collect();
            out.push((name.clone(), Out::Raw { dtype: Dtype::I8, shape: vec![rows, cols], data }));
            let data = scales.iter().flat_map(|s| s.to_le_bytes()).collect();
            out.push((format!("{name}{SCALE_SUFFIX}"), Out::Raw { dtype: Dtype::F32, shape: vec![rows], data }));
        } else {
            out.push((name.clone(), Out::Candle(t.to_dtype(DType::F16)?.contiguous()?)));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let mut metadata = HashMap::new();
    metadata.insert("format".to_string(), "pt".to_string());
    metadata.insert("bert_tasks.quantization".to_string(), "q8-per-row-symmetric".to_string());
    safetensors::tensor::serialize(out.iter().map(|(n, o)| (n.as_str(), o)), Some(metadata))
        .map_err(|e| Error::Weights(format!("serialising the q8 model: {e}")))
}

/// Whether a safetensors file holds int8 tensors (a q8 export). `None` if it does not parse
/// (the ordinary loader then reports why).
pub fn has_int8(bytes: &[u8]) -> Option<bool> {
    let st = safetensors::SafeTensors::deserialize(bytes).ok()?;
    Some(st.tensors().iter().any(|(_, v)| v.dtype() == Dtype::I8))
}

/// Whether the loader keeps `name` int8 for the int8 kernels: the linear layers of the encoder's
/// transformer layers (the ones `encoder::Dense` loads). Not embeddings (looked up row by row),
/// heads, or the pooler: it runs on one row per text, so int8 saves nothing there, while its
/// rounding reaches the classifier undamped.
pub fn keeps_int8(name: &str) -> bool {
    name.ends_with(".weight") && name.contains("encoder.layer.")
}

/// Reads a q8 file: the matrices [`keeps_int8`] picks as raw `U8` tensors (the int8 bytes) with
/// their F32 scales, the other int8 matrices times their scales back to f32, the rest as stored.
/// A missing or misshaped scale is an error naming the tensor.
pub fn load_q8(bytes: &[u8], source: &str) -> Result<HashMap<String, Tensor>> {
    let err = |m: String| Error::Weights(format!("{source}: {m}"));
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| err(e.to_string()))?;
    let views: HashMap<String, TensorView> = st.tensors().into_iter().collect();
    let mut tensors = HashMap::new();
    for (name, view) in &views {
        if view.dtype() == Dtype::I8 {
            let scale_name = format!("{name}{SCALE_SUFFIX}");
            let &[rows, cols] = view.shape() else {
                return Err(err(format!("int8 tensor {name} has shape {:?}; only 2-D matrices are quantised", view.shape())));
            };
            let scale = views
                .get(&scale_name)
                .ok_or_else(|| err(format!("int8 tensor {name} has no {scale_name} (its per-row scales)")))?;
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
            } else {
                tensors.insert(name.clone(), Tensor::from_vec(dequantize_rows(view.data(), &scales, cols), (rows, cols), &Device::Cpu)?);
            }
        } else if name.ends_with(SCALE_SUFFIX) && views.get(&name[..name.len() - SCALE_SUFFIX.len()]).is_some_and(|v| v.dtype() == Dtype::I8) {
            continue; // handled with its matrix
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

/// Turns the int8 matrices [`load_q8`] kept (raw `U8` + scale) into f32, dropping the scales.
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
        let bytes = quantize(&tensors).unwrap();
        assert_eq!(has_int8(&bytes), Some(true));
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("a.dense.weight").unwrap().dtype(), Dtype::I8);
        assert_eq!(st.tensor("a.dense.weight_scale").unwrap().shape(), [64]);
        assert_eq!(st.tensor("classifier.weight").unwrap().dtype(), Dtype::F16, "small matrices stay f16");
        let back = load_q8(&bytes, "m").unwrap();
        assert_eq!(back.len(), 3, "scales are folded in, not returned");
        let got = back["a.dense.weight"].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let worst = got.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst <= 1.0 / 127.0 / 2.0 + 1e-6, "max error {worst}");

        // An encoder linear layer stays int8 (raw bytes + scale) for the int8 kernels, and
        // dequantize_kept gives the same f32 as the other matrices get.
        let mut enc = tensors.clone();
        enc.insert("encoder.layer.0.output.dense.weight".into(), enc["a.dense.weight"].clone());
        let kept = load_q8(&quantize(&enc).unwrap(), "m").unwrap();
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
        let e = load_q8(&missing, "m.safetensors").err().unwrap().to_string();
        assert!(e.contains("m.safetensors") && e.contains("a.dense.weight") && e.contains("a.dense.weight_scale"), "{e}");
        let short = strip(&|n| n != "a.dense.weight_scale", Some(vec![1.0; 10]));
        let e = load_q8(&short, "m.safetensors").err().unwrap().to_string();
        assert!(e.contains("a.dense.weight_scale must be F32 [64]"), "{e}");
    }
}
