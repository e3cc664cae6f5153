//! A linear-chain CRF over tag emissions, with pytorch-crf's tensor names and meaning:
//! `crf.transitions[from, to]`, `crf.start_transitions`, `crf.end_transitions`.
//!
//! Decoding runs on the host (sequences are at most a few hundred tokens and label sets small),
//! optionally constrained by a scheme so that an invalid sequence such as `B-PER I-ORG` can
//! never come out: forbidden moves are impossible, not merely unlikely.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use crate::text::scheme::Constraints;
use crate::{Error, Result};

pub struct Crf {
    pub transitions: Tensor,
    pub start_transitions: Tensor,
    pub end_transitions: Tensor,
    host: Scores,
}

/// Host copies of the CRF parameters for decoding.
#[derive(Debug, Clone)]
struct Scores {
    transitions: Vec<Vec<f32>>,
    start: Vec<f32>,
    end: Vec<f32>,
}

impl Crf {
    pub fn load(vb: VarBuilder, num_tags: usize) -> Result<Self> {
        let get = |shape: &[usize], name: &str| {
            vb.get(shape, name).map_err(|e| Error::Weights(format!("CRF tensor crf.{name}: {}", crate::error::clean(&e))))
        };
        let transitions = get(&[num_tags, num_tags], "transitions")?;
        let start_transitions = get(&[num_tags], "start_transitions")?;
        let end_transitions = get(&[num_tags], "end_transitions")?;
        let host = Scores {
            transitions: transitions.to_vec2()?,
            start: start_transitions.to_vec1()?,
            end: end_transitions.to_vec1()?,
        };
        Ok(Crf { transitions, start_transitions, end_transitions, host })
    }

    pub fn num_tags(&self) -> usize {
        self.host.start.len()
    }

    /// The highest-scoring tag path for `emissions[token][tag]`. With `constraints`, only paths
    /// the scheme allows are considered (if the label set admits none, the unconstrained path).
    pub fn decode(&self, emissions: &[Vec<f32>], constraints: Option<&Constraints>) -> Vec<usize> {
        if emissions.is_empty() {
            return Vec::new();
        }
        let s = self.scores(constraints);
        match viterbi(&s, emissions) {
            Some(path) => path,
            None => viterbi(&self.host, emissions).unwrap_or_default(),
        }
    }

    /// `p(tag_t = j | sentence)` for every token and tag (forward-backward), under the same
    /// constraints as `decode`: the confidence reported next to each CRF tag.
    pub fn marginals(&self, emissions: &[Vec<f32>], constraints: Option<&Constraints>) -> Vec<Vec<f32>> {
        if emissions.is_empty() {
            return Vec::new();
        }
        let s = self.scores(constraints);
        let m = forward_backward(&s, emissions);
        if m.iter().flatten().all(|p| p.is_finite()) { m } else { forward_backward(&self.host, emissions) }
    }

    /// Mean negative log-likelihood of the gold `tags` `[b, T]` under `emissions` `[b, T, L]`
    /// (pytorch-crf's loss with `reduction="mean"`). `lengths[i]` real positions of row `i`
    /// (at least 1) come first; the rest is padding. Differentiable in emissions and CRF tensors.
    pub fn nll(&self, emissions: &Tensor, tags: &[Vec<u32>], lengths: &[usize]) -> Result<Tensor> {
        let (b, t_len, n) = emissions.dims3()?;
        let dev = emissions.device();
        if lengths.iter().any(|&l| l == 0 || l > t_len) || tags.len() != b {
            return Err(Error::Input("CRF: every sequence needs between 1 and T tags".into()));
        }
        let flat_tags: Vec<u32> = tags.iter().flat_map(|r| {
            let mut r = r.clone();
            r.resize(t_len, 0);
            r
        }).collect();
        let tag_t = Tensor::from_vec(flat_tags.clone(), (b, t_len), dev)?;
        let mask: Vec<f32> = lengths.iter().flat_map(|&l| (0..t_len).map(move |t| if t < l { 1.0 } else { 0.0 })).collect();
        let mask = Tensor::from_vec(mask, (b, t_len), dev)?;

        // Score of the gold path.
        let emissions = &emissions.contiguous()?;
        let em_gold = emissions.gather(&tag_t.unsqueeze(2)?, 2)?.squeeze(2)?; // [b, T]
        let mut gold = (em_gold * &mask)?.sum(1)?;
        let first: Vec<u32> = tags.iter().map(|r| r[0]).collect();
        let last: Vec<u32> = tags.iter().zip(lengths).map(|(r, &l)| r[l - 1]).collect();
        gold = (gold + self.start_transitions.index_select(&Tensor::new(first, dev)?, 0)?)?;
        gold = (gold + self.end_transitions.index_select(&Tensor::new(last, dev)?, 0)?)?;
        if t_len > 1 {
            let pairs: Vec<u32> = (0..b)
                .flat_map(|i| {
                    let row = &flat_tags[i * t_len..(i + 1) * t_len];
                    (1..t_len).map(move |t| row[t - 1] * n as u32 + row[t]).collect::<Vec<_>>()
                })
                .collect();
            let trans = self.transitions.flatten_all()?.index_select(&Tensor::new(pairs, dev)?, 0)?.reshape((b, t_len - 1))?;
            gold = (gold + (trans * mask.narrow(1, 1, t_len - 1)?)?.sum(1)?)?;
        }

        // log Z by the forward algorithm; padded steps keep the previous alpha.
        let mut alpha = self.start_transitions.unsqueeze(0)?.broadcast_add(&emissions.narrow(1, 0, 1)?.squeeze(1)?)?;
        let trans = self.transitions.unsqueeze(0)?; // [1, from, to]
        for t in 1..t_len {
            let em_t = emissions.narrow(1, t, 1)?.squeeze(1)?; // [b, n]
            let next = alpha.unsqueeze(2)?.broadcast_add(&trans)?.log_sum_exp(1)?.add(&em_t)?;
            let m = mask.narrow(1, t, 1)?; // [b, 1]
            alpha = (next.broadcast_mul(&m)? + alpha.broadcast_mul(&(1.0 - &m)?)?)?;
        }
        let log_z = alpha.broadcast_add(&self.end_transitions.unsqueeze(0)?)?.log_sum_exp(1)?;
        Ok((log_z - gold)?.mean_all()?)
    }

    fn scores(&self, constraints: Option<&Constraints>) -> Scores {
        let mut s = self.host.clone();
        if let Some(c) = constraints {
            s.forbid(c);
        }
        s
    }
}

impl Scores {
    /// Sets what `c` forbids to −∞.
    fn forbid(&mut self, c: &Constraints) {
        let ninf = f32::NEG_INFINITY;
        for i in 0..self.start.len() {
            if !c.start[i] {
                self.start[i] = ninf;
            }
            if !c.end[i] {
                self.end[i] = ninf;
            }
            for j in 0..self.start.len() {
                if !c.transition[i][j] {
                    self.transitions[i][j] = ninf;
                }
            }
        }
    }
}

/// The most probable tag path of a per-token softmax tagger that the scheme allows: Viterbi over
/// the tokens' log-probabilities with no transition scores, only `constraints`' −∞ (what
/// `argmax` per token gives wherever that is already valid). `None` if the label set admits no
/// path.
pub fn constrained_argmax(log_probs: &[Vec<f32>], constraints: &Constraints) -> Option<Vec<usize>> {
    if log_probs.is_empty() {
        return Some(Vec::new());
    }
    let n = constraints.start.len();
    let mut s = Scores { transitions: vec![vec![0.0; n]; n], start: vec![0.0; n], end: vec![0.0; n] };
    s.forbid(constraints);
    viterbi(&s, log_probs)
}

// i and j are tags, indexing `transitions[i][j]` and the score rows alike, as the recurrence is written.
#[allow(clippy::needless_range_loop)]
fn viterbi(s: &Scores, em: &[Vec<f32>]) -> Option<Vec<usize>> {
    let n = s.start.len();
    let mut score: Vec<f32> = (0..n).map(|j| s.start[j] + em[0][j]).collect();
    let mut back: Vec<Vec<usize>> = Vec::with_capacity(em.len());
    for row in &em[1..] {
        let mut next = vec![f32::NEG_INFINITY; n];
        let mut from = vec![0usize; n];
        for j in 0..n {
            for i in 0..n {
                let v = score[i] + s.transitions[i][j];
                if v > next[j] {
                    next[j] = v;
                    from[j] = i;
                }
            }
            next[j] += row[j];
        }
        back.push(from);
        score = next;
    }
    let (mut best, mut best_score) = (0, f32::NEG_INFINITY);
    for j in 0..n {
        let v = score[j] + s.end[j];
        if v > best_score {
            best = j;
            best_score = v;
        }
    }
    if best_score == f32::NEG_INFINITY {
        return None;
    }
    let mut path = vec![best];
    for from in back.iter().rev() {
        best = from[best];
        path.push(best);
    }
    path.reverse();
    Some(path)
}

fn log_sum_exp(xs: impl Iterator<Item = f32>) -> f32 {
    let xs: Vec<f32> = xs.collect();
    let m = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if m == f32::NEG_INFINITY {
        return m;
    }
    m + xs.iter().map(|x| (x - m).exp()).sum::<f32>().ln()
}

fn forward_backward(s: &Scores, em: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let (t_len, n) = (em.len(), s.start.len());
    let mut alpha = vec![vec![0f32; n]; t_len];
    let mut beta = vec![vec![0f32; n]; t_len];
    alpha[0] = (0..n).map(|j| s.start[j] + em[0][j]).collect();
    for t in 1..t_len {
        alpha[t] = (0..n)
            .map(|j| log_sum_exp((0..n).map(|i| alpha[t - 1][i] + s.transitions[i][j])) + em[t][j])
            .collect();
    }
    beta[t_len - 1] = s.end.clone();
    for t in (0..t_len - 1).rev() {
        beta[t] = (0..n)
            .map(|i| log_sum_exp((0..n).map(|j| s.transitions[i][j] + em[t + 1][j] + beta[t + 1][j])))
            .collect();
    }
    let log_z = log_sum_exp((0..n).map(|j| alpha[t_len - 1][j] + s.end[j]));
    (0..t_len)
        .map(|t| (0..n).map(|j| (alpha[t][j] + beta[t][j] - log_z).exp()).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::scheme::Scheme;
    use candle_core::{DType, Device};
    use std::collections::HashMap;

    fn crf(n: usize, seed: u64) -> Crf {
        let mut x = seed;
        let mut rnd = |len: usize| -> Vec<f32> {
            (0..len)
                .map(|_| {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((x >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
                })
                .collect()
        };
        let d = Device::Cpu;
        let map = HashMap::from([
            ("transitions".to_string(), Tensor::from_vec(rnd(n * n), (n, n), &d).unwrap()),
            ("start_transitions".to_string(), Tensor::from_vec(rnd(n), n, &d).unwrap()),
            ("end_transitions".to_string(), Tensor::from_vec(rnd(n), n, &d).unwrap()),
        ]);
        Crf::load(VarBuilder::from_tensors(map, DType::F32, &d), n).unwrap()
    }

    fn path_score(s: &Scores, em: &[Vec<f32>], path: &[usize]) -> f32 {
        let mut v = s.start[path[0]] + s.end[*path.last().unwrap()];
        for (t, &j) in path.iter().enumerate() {
            v += em[t][j];
            if t > 0 {
                v += s.transitions[path[t - 1]][j];
            }
        }
        v
    }

    /// Padding rows in a batch do not change a sequence's NLL.
    #[test]
    fn nll_ignores_padding() {
        let c = crf(3, 5);
        let em: Vec<Vec<f32>> = (0..5).map(|t| (0..3).map(|j| (t * 3 + j) as f32 * 0.3 - 1.0).collect()).collect();
        let full = Tensor::new(em.clone(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let short = full.narrow(1, 0, 3).unwrap();
        let tags = vec![0u32, 2, 1, 0, 0];
        let a = c.nll(&short, &[tags[..3].to_vec()], &[3]).unwrap().to_scalar::<f32>().unwrap();
        let b = c.nll(&full, std::slice::from_ref(&tags), &[3]).unwrap().to_scalar::<f32>().unwrap();
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }

    /// The softmax decoder's constrained path: valid, as probable as the best valid path found by
    /// brute force, and the per-token argmax itself wherever that is valid.
    #[test]
    fn constrained_argmax_is_the_most_probable_valid_path() {
        let labels: Vec<String> = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"].iter().map(|s| s.to_string()).collect();
        let cons = Constraints::new(crate::text::scheme::Scheme::BIO, &labels).unwrap();
        let mut rng = 7u64;
        let mut next = || {
            rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (rng >> 40) as f32 / (1u64 << 24) as f32
        };
        let (mut differed, mut kept) = (0, 0);
        for _ in 0..200 {
            let t = 1 + (next() * 5.0) as usize;
            let logs: Vec<Vec<f32>> = (0..t)
                .map(|_| {
                    let row: Vec<f32> = (0..5).map(|_| next() * 4.0).collect();
                    let z = row.iter().map(|v| v.exp()).sum::<f32>().ln();
                    row.iter().map(|v| v - z).collect()
                })
                .collect();
            let got = constrained_argmax(&logs, &cons).unwrap();
            assert!(cons.is_valid(&got));
            // Brute force over every path: the best valid one by summed log-probability.
            let score = |p: &[usize]| p.iter().enumerate().map(|(i, &j)| logs[i][j]).sum::<f32>();
            let best = (0..5usize.pow(t as u32))
                .map(|mut code| (0..t).map(|_| { let j = code % 5; code /= 5; j }).collect::<Vec<_>>())
                .filter(|p| cons.is_valid(p))
                .max_by(|a, b| score(a).total_cmp(&score(b)))
                .unwrap();
            assert!((score(&got) - score(&best)).abs() < 1e-5, "{got:?} vs {best:?}");
            let argmax: Vec<usize> = logs.iter().map(|r| (0..5).fold(0, |b, j| if r[j] > r[b] { j } else { b })).collect();
            if cons.is_valid(&argmax) {
                assert_eq!(got, argmax, "a valid argmax is kept as it is");
                kept += 1;
            } else {
                differed += 1;
            }
        }
        assert!(differed > 20 && kept > 20, "both cases exercised: {differed} repaired, {kept} kept");
    }

    /// Viterbi equals brute force over every path, with and without constraints, and the
    /// marginals are a probability distribution that agrees with brute-force enumeration.
    #[test]
    #[allow(clippy::needless_range_loop)] // t and j index positions and tags of paths and marginals alike
    fn viterbi_and_marginals_equal_brute_force() {
        let labels: Vec<String> = "O B-A I-A B-B I-B".split(' ').map(String::from).collect();
        let cons = Constraints::new(Scheme::BIO, &labels).unwrap();
        for seed in 0..20 {
            let c = crf(5, seed);
            let em: Vec<Vec<f32>> = (0..4).map(|t| (0..5).map(|j| ((seed as f32 + 1.3) * (t * 5 + j) as f32).sin() * 2.0).collect()).collect();
            let mut best = (f32::NEG_INFINITY, vec![]);
            let mut best_valid = (f32::NEG_INFINITY, vec![]);
            let mut z = Vec::new();
            for code in 0..5usize.pow(4) {
                let path: Vec<usize> = (0..4).map(|t| code / 5usize.pow(t as u32) % 5).collect();
                let v = path_score(&c.host, &em, &path);
                z.push((v, path.clone()));
                if v > best.0 { best = (v, path.clone()); }
                if cons.is_valid(&path) && v > best_valid.0 { best_valid = (v, path); }
            }
            assert_eq!(c.decode(&em, None), best.1, "seed {seed}");
            let constrained = c.decode(&em, Some(&cons));
            assert_eq!(constrained, best_valid.1, "seed {seed}");
            assert!(cons.is_valid(&constrained));
            // NLL of a path = log Z - its score.
            let em_t = Tensor::new(em.clone(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
            let gold: Vec<u32> = best.1.iter().map(|&j| j as u32).collect();
            let nll = c.nll(&em_t, &[gold], &[4]).unwrap().to_scalar::<f32>().unwrap();
            let want = log_sum_exp(z.iter().map(|(v, _)| *v)) - best.0;
            assert!((nll - want).abs() < 1e-3, "nll {nll} vs {want}");
            let log_z = log_sum_exp(z.iter().map(|(v, _)| *v));
            let m = c.marginals(&em, None);
            for t in 0..4 {
                for j in 0..5 {
                    let want: f32 = z.iter().filter(|(_, p)| p[t] == j).map(|(v, _)| (v - log_z).exp()).sum();
                    assert!((m[t][j] - want).abs() < 1e-4, "marginal t={t} j={j}: {} vs {want}", m[t][j]);
                }
            }
        }
    }
}
