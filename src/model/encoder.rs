//! The BERT encoder, one struct per checkpoint sub-module so that weight names mirror the
//! checkpoint (`embeddings.word_embeddings.weight`, `encoder.layer.3.attention.self.query.bias`, …).
//!
//! We own this code rather than wrapping candle-transformers' `BertModel` because the tasks need
//! two hooks it lacks: real dropout in training, and extra embeddings added inside the embedding
//! layer (relation-position embeddings). A dev test checks we agree with candle-transformers.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{embedding, linear, Embedding, Linear, VarBuilder};

use super::autocast;
use super::config::{BertConfig, HiddenAct};
use super::dropout::{Dropout, DropoutRng};
use super::fused;
use super::int8::Int8Linear;
use super::train_attention::TrainingAttention;
use super::train_linear;
use super::norm::{softmax_last_dim, LayerNorm};
use crate::{Error, Result};

/// One padded batch, as the tokenizer produced it.
pub struct EncoderInput<'a> {
    /// `[batch, seq]` token ids (u32).
    pub input_ids: &'a Tensor,
    /// `[batch, seq]` segment ids: 0 for the first text, 1 for the second of a pair.
    pub token_type_ids: &'a Tensor,
    /// `[batch, seq]`, 1 for real tokens and 0 for padding.
    pub attention_mask: &'a Tensor,
    /// `[batch, seq, hidden]` added to the input embeddings before their LayerNorm
    /// (e.g. relation-position embeddings); `None` for plain BERT.
    pub extra_embeddings: Option<&'a Tensor>,
}

pub struct EncoderOutput {
    /// `[batch, seq, hidden]`
    pub last_hidden_state: Tensor,
    /// `[batch, hidden]`: dense + tanh on [CLS]; `None` when the checkpoint has no pooler
    /// (transformers saves `BertForTokenClassification` without one).
    pub pooler_output: Option<Tensor>,
}

pub struct BertEmbeddings {
    word_embeddings: Embedding,
    position_embeddings: Embedding,
    token_type_embeddings: Embedding,
    layer_norm: LayerNorm,
    dropout: Dropout,
    max_positions: usize,
}

impl BertEmbeddings {
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> candle_core::Result<Self> {
        Ok(Self {
            word_embeddings: embedding(cfg.vocab_size, cfg.hidden_size, vb.pp("word_embeddings"))?,
            position_embeddings: embedding(
                cfg.max_position_embeddings,
                cfg.hidden_size,
                vb.pp("position_embeddings"),
            )?,
            token_type_embeddings: embedding(
                cfg.type_vocab_size,
                cfg.hidden_size,
                vb.pp("token_type_embeddings"),
            )?,
            layer_norm: LayerNorm::load(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("LayerNorm"))?,
            dropout: Dropout::new(cfg.hidden_dropout_prob),
            max_positions: cfg.max_position_embeddings,
        })
    }

    /// The word-embedding matrix, `[vocab, hidden]`.
    pub fn word_embeddings(&self) -> &Tensor {
        self.word_embeddings.embeddings()
    }

    fn forward(&self, input: &EncoderInput, train: Option<&DropoutRng>) -> Result<Tensor> {
        let seq_len = input.input_ids.dim(1)?;
        if seq_len > self.max_positions {
            return Err(Error::Input(format!(
                "{seq_len} tokens exceed the model's {} positions",
                self.max_positions
            )));
        }
        let positions = Tensor::arange(0u32, seq_len as u32, input.input_ids.device())?.unsqueeze(0)?;
        let mut x = self
            .word_embeddings
            .forward(input.input_ids)?
            .add(&self.token_type_embeddings.forward(input.token_type_ids)?)?
            .broadcast_add(&self.position_embeddings.forward(&positions)?)?;
        if let Some(extra) = input.extra_embeddings {
            x = x.add(extra)?;
        }
        let x = self.layer_norm.forward(&x, train.is_some())?;
        self.dropout.forward(&x, train)
    }
}

/// A linear layer of the encoder: f32 weights, or int8 ones from a q8 export (`int8/`).
pub enum Dense {
    Float(Linear),
    Int8(Int8Linear),
}

impl Dense {
    /// Loads `weight` `[out_dim, in_dim]` and `bias`. A q8 export's int8 matrix (kept as raw
    /// bytes by `Weights`, next to its `weight_scale`) stays int8 on the CPU; other devices
    /// get it dequantised.
    pub fn load(in_dim: usize, out_dim: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        let scale_name = format!("weight{}", super::quantize::SCALE_SUFFIX);
        if !vb.contains_tensor(&scale_name) {
            return Ok(Dense::Float(linear(in_dim, out_dim, vb)?));
        }
        let raw = vb.get_with_hints_dtype((out_dim, in_dim), "weight", Default::default(), DType::U8)?;
        let q: Vec<i8> = raw.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<u8>()?.into_iter().map(|b| b as i8).collect();
        let scale = vb.get(out_dim, &scale_name)?.to_device(&Device::Cpu)?.to_vec1::<f32>()?;
        let bias = vb.get(out_dim, "bias")?.to_device(&Device::Cpu)?.to_vec1::<f32>()?;
        let layer = Int8Linear::new(&q, scale, bias, out_dim, in_dim);
        if vb.device().is_cpu() {
            return Ok(Dense::Int8(layer));
        }
        let w = Tensor::from_vec(layer.dequantize(), (out_dim, in_dim), vb.device())?;
        let b = Tensor::from_slice(layer.bias(), out_dim, vb.device())?;
        Ok(Dense::Float(Linear::new(w, Some(b))))
    }

    /// In inference on CPU f32 through the fused kernel (bias inside the matmul, the thread
    /// pool on wasm too), or the int8 one.
    fn forward(&self, x: &Tensor, train: Option<&DropoutRng>) -> Result<Tensor> {
        let layer = match self {
            Dense::Int8(q) => return Ok(q.forward(x)?),
            Dense::Float(layer) => layer,
        };
        if train.is_none() && fused::applies(x) {
            Ok(fused::linear(x, layer.weight(), layer.bias())?)
        } else if let (true, Some(bias)) = (fused::applies(x), layer.bias()) {
            Ok(train_linear::forward(x, layer.weight(), bias)?)
        } else if !x.device().is_cpu() {
            Ok(autocast::linear(x, layer.weight(), layer.bias())?)
        } else {
            Ok(layer.forward(x)?)
        }
    }
}

/// Q, K and V: three layers, or for int8 weights (inference on the CPU only) one stacked
/// `[3 · hidden, hidden]` layer, so that the input is quantised once and the thread pool woken
/// once for all three, with one strip split over 3 · hidden columns.
#[allow(clippy::large_enum_variant)] // one per layer, built once at load
enum Projections {
    Separate { query: Dense, key: Dense, value: Dense },
    Stacked(Int8Linear),
}

struct BertSelfAttention {
    projections: Projections,
    dropout: Dropout,
    num_heads: usize,
    head_dim: usize,
}

impl BertSelfAttention {
    fn load(vb: VarBuilder, cfg: &BertConfig) -> candle_core::Result<Self> {
        let h = cfg.hidden_size;
        let [query, key, value] = ["query", "key", "value"].map(|name| Dense::load(h, h, vb.pp(name)));
        let projections = match (query?, key?, value?) {
            (Dense::Int8(q), Dense::Int8(k), Dense::Int8(v)) => Projections::Stacked(Int8Linear::stack(&[&q, &k, &v])),
            (query, key, value) => Projections::Separate { query, key, value },
        };
        Ok(Self {
            projections,
            dropout: Dropout::new(cfg.attention_probs_dropout_prob),
            num_heads: cfg.num_attention_heads,
            head_dim: cfg.head_dim(),
        })
    }

    /// The three layers, for every path but int8 inference.
    fn separate(&self) -> Result<[&Dense; 3]> {
        match &self.projections {
            Projections::Separate { query, key, value } => Ok([query, key, value]),
            Projections::Stacked(_) => Err(Error::Input("int8 (q8) weights are for inference on the CPU only".into())),
        }
    }

    /// `[b, t, hidden]` → `[b, heads, t, head_dim]`
    fn split_heads(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        x.reshape((b, t, self.num_heads, self.head_dim))?.transpose(1, 2)?.contiguous()
    }

    /// `[b, n, hidden]`: the attention output of `first`, the first n positions of `x` (all of
    /// `x`, or [CLS] alone in a [CLS]-only last layer), with keys and values from every position.
    fn forward(&self, x: &Tensor, first: &Tensor, mask_bias: &Tensor, train: Option<&DropoutRng>) -> Result<Tensor> {
        let (b, t, h) = x.dims3()?;
        let queries = first.dim(1)?;
        if let (None, true, Projections::Stacked(qkv)) = (train, fused::applies(x), &self.projections) {
            // Q of every position comes with K and V in one product; only `queries` rows are read.
            return Ok(fused::attention_stacked(&qkv.forward(x)?, &mask_bias.reshape((b, t))?, self.num_heads, queries)?);
        }
        let [query, key, value] = self.separate()?;
        if train.is_none() && fused::applies(x) {
            let [q, k, v] = [(query, first), (key, x), (value, x)].map(|(l, x)| l.forward(x, None));
            return Ok(fused::attention(&q?, &k?, &v?, &mask_bias.reshape((b, t))?, self.num_heads)?);
        }
        if queries < t {
            // Inference off the CPU: candle's ops take fewer query rows as they are.
            let q = self.split_heads(&query.forward(first, None)?)?;
            let (k, v) = (self.split_heads(&key.forward(x, None)?)?, self.split_heads(&value.forward(x, None)?)?);
            let scores = (autocast::matmul(&q, &k.t()?)? * (1.0 / (self.head_dim as f64).sqrt()))?.broadcast_add(mask_bias)?;
            let probs = softmax_last_dim(&scores, false)?;
            return Ok(autocast::matmul(&probs, &v)?.transpose(1, 2)?.reshape((b, queries, h))?);
        }
        if fused::applies(x) {
            // Training on the CPU: one fused op with an analytic backward (train_attention.rs).
            let [q, k, v] = [query, key, value].map(|l| l.forward(x, train));
            let dropout = self.dropout.cpu_mask(b * self.num_heads * t * t, train);
            return Ok(TrainingAttention::forward(&q?, &k?, &v?, mask_bias, self.num_heads, dropout)?);
        }
        let q = self.split_heads(&query.forward(x, train)?)?;
        let k = self.split_heads(&key.forward(x, train)?)?;
        let v = self.split_heads(&value.forward(x, train)?)?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let scores = (autocast::matmul(&q, &k.t()?)? * scale)?.broadcast_add(mask_bias)?;
        let probs = softmax_last_dim(&scores, train.is_some())?;
        let probs = self.dropout.forward(&probs, train)?;
        Ok(autocast::matmul(&probs, &v)?.transpose(1, 2)?.reshape((b, t, h))?)
    }
}

/// `dense` + dropout + residual + LayerNorm: the tail of both the attention and the FFN block.
struct ResidualOutput {
    dense: Dense,
    layer_norm: LayerNorm,
    dropout: Dropout,
}

impl ResidualOutput {
    fn load(vb: VarBuilder, cfg: &BertConfig, in_dim: usize) -> candle_core::Result<Self> {
        Ok(Self {
            dense: Dense::load(in_dim, cfg.hidden_size, vb.pp("dense"))?,
            layer_norm: LayerNorm::load(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("LayerNorm"))?,
            dropout: Dropout::new(cfg.hidden_dropout_prob),
        })
    }

    fn forward(&self, x: &Tensor, residual: &Tensor, train: Option<&DropoutRng>) -> Result<Tensor> {
        if let (Dense::Int8(dense), None, true) = (&self.dense, train, fused::applies(residual)) {
            // int8 inference: residual and LayerNorm inside the product's parallel region.
            let n = dense.out_dim();
            let out = fused::with_f32(residual, |res| {
                self.layer_norm.with_affine(|gamma, beta, eps| {
                    dense.forward_rows(x, &|i, row| {
                        row.iter_mut().zip(&res[i * n..(i + 1) * n]).for_each(|(v, r)| *v += r);
                        super::fastmath::layer_norm_row(row, gamma, beta, eps);
                    })
                })
            })???;
            return Ok(out);
        }
        let x = self.dropout.forward(&self.dense.forward(x, train)?, train)?;
        self.layer_norm.forward(&x.add(residual)?, train.is_some())
    }
}

struct BertLayer {
    attention: BertSelfAttention,
    attention_output: ResidualOutput,
    intermediate: Dense,
    activation: HiddenAct,
    output: ResidualOutput,
}

impl BertLayer {
    fn load(vb: VarBuilder, cfg: &BertConfig) -> candle_core::Result<Self> {
        Ok(Self {
            attention: BertSelfAttention::load(vb.pp("attention.self"), cfg)?,
            attention_output: ResidualOutput::load(vb.pp("attention.output"), cfg, cfg.hidden_size)?,
            intermediate: Dense::load(cfg.hidden_size, cfg.intermediate_size, vb.pp("intermediate.dense"))?,
            activation: cfg.hidden_act,
            output: ResidualOutput::load(vb.pp("output"), cfg, cfg.intermediate_size)?,
        })
    }

    /// `[b, queries, hidden]`: the layer's output for the first `queries` positions.
    fn forward(&self, x: &Tensor, mask_bias: &Tensor, train: Option<&DropoutRng>, queries: usize) -> Result<Tensor> {
        let first = first_positions(x, queries)?;
        let attended = self.attention.forward(x, &first, mask_bias, train)?;
        let x = self.attention_output.forward(&attended, &first, train)?;
        if let (Dense::Int8(q), HiddenAct::Gelu, None) = (&self.intermediate, self.activation, train) {
            return self.output.forward(&q.forward_gelu(&x)?, &x, train);
        }
        let inner = self.intermediate.forward(&x, train)?;
        let inner = match self.activation {
            HiddenAct::Gelu => super::norm::gelu_erf(&inner, train.is_some())?,
            HiddenAct::GeluTanh => inner.gelu()?,
            HiddenAct::Relu => inner.relu()?,
            HiddenAct::Silu => inner.silu()?,
        };
        self.output.forward(&inner, &x, train)
    }
}

/// Plain f32 `Linear`, never int8 (`quantize::keeps_int8`) and never the inference-only fused
/// kernel: it runs on one row per text, and in training its gradient must reach the encoder.
pub struct BertPooler {
    dense: Linear,
}

impl BertPooler {
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> candle_core::Result<Self> {
        Ok(Self { dense: linear(cfg.hidden_size, cfg.hidden_size, vb.pp("dense"))? })
    }

    /// dense + tanh on the first ([CLS]) token.
    pub fn forward(&self, hidden: &Tensor) -> Result<Tensor> {
        // contiguous: CUDA matmul refuses a strided left operand (CPU accepts it).
        let cls = hidden.narrow(1, 0, 1)?.squeeze(1)?.contiguous()?;
        Ok(self.dense.forward(&cls)?.tanh()?)
    }
}

/// The whole encoder: embeddings, `num_hidden_layers` transformer layers, optional pooler.
pub struct BertModel {
    pub embeddings: BertEmbeddings,
    layers: Vec<BertLayer>,
    pub pooler: Option<BertPooler>,
    config: BertConfig,
}

impl BertModel {
    /// Loads from a `VarBuilder` rooted where `embeddings.*` lives (use `vb.pp("bert")` for
    /// `BertFor*` checkpoints). Missing or misshaped tensors are named in the error.
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        let build = || -> candle_core::Result<Self> {
            let layers = (0..cfg.num_hidden_layers)
                .map(|i| BertLayer::load(vb.pp(format!("encoder.layer.{i}")), cfg))
                .collect::<candle_core::Result<Vec<_>>>()?;
            let pooler = if vb.contains_tensor("pooler.dense.weight") {
                Some(BertPooler::load(vb.pp("pooler"), cfg)?)
            } else {
                None
            };
            Ok(Self { embeddings: BertEmbeddings::load(vb.pp("embeddings"), cfg)?, layers, pooler, config: cfg.clone() })
        };
        build().map_err(|e| Error::Weights(crate::error::clean(&e)))
    }

    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// Runs the encoder. `train` switches dropout on (with its random source); `None` = inference.
    pub fn forward(&self, input: &EncoderInput, train: Option<&DropoutRng>) -> Result<EncoderOutput> {
        self.forward_for_head(input, train, false)
    }

    /// [`Self::forward`] for a head; `first_position_only`: it reads only the first position
    /// ([CLS]: the pooler, CLS pooling). Then inference (`train` = `None`; training ignores it)
    /// runs the last layer on that position alone — its keys and values still come from every
    /// position, so the result is the full encoder's row — which skips three quarters of that
    /// layer's products or more (the stacked int8 Q, K, V still run on every position; the
    /// output projection, FFN and attention rows on [CLS] only): with 6 layers, an eighth of the
    /// encoder. `last_hidden_state` is then `[batch, 1, hidden]`.
    pub fn forward_for_head(&self, input: &EncoderInput, train: Option<&DropoutRng>, first_position_only: bool) -> Result<EncoderOutput> {
        crate::parallel::in_pool(|| self.forward_here(input, train, first_position_only && train.is_none()))
    }

    fn forward_here(&self, input: &EncoderInput, train: Option<&DropoutRng>, first_only: bool) -> Result<EncoderOutput> {
        let mask_bias = attention_bias(input.attention_mask)?;
        let mut x = self.embeddings.forward(input, train)?;
        let t = x.dim(1)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let queries = if first_only && i + 1 == self.layers.len() { t.min(1) } else { t };
            x = layer.forward(&x, &mask_bias, train, queries)?;
        }
        let pooler_output = match &self.pooler {
            Some(p) => Some(p.forward(&x)?),
            None => None,
        };
        Ok(EncoderOutput { last_hidden_state: x, pooler_output })
    }
}

/// The first `n` positions of `[b, t, hidden]` (contiguous: the fused kernels read raw rows).
fn first_positions(x: &Tensor, n: usize) -> Result<Tensor> {
    if n == x.dim(1)? {
        return Ok(x.clone());
    }
    Ok(x.narrow(1, 0, n)?.contiguous()?)
}

/// `[b, t]` mask of 1/0 → `[b, 1, 1, t]` additive bias: 0 where attended, the most negative f32
/// where padded (as transformers does), so padded keys get exactly zero attention.
fn attention_bias(mask: &Tensor) -> Result<Tensor> {
    let (b, t) = mask.dims2()?;
    let mask = mask.to_dtype(DType::F32)?;
    let bias = ((mask.ones_like()? - mask)? * f32::MIN as f64)?;
    Ok(bias.reshape((b, 1, 1, t))?)
}

