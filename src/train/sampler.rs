//! The order in which training examples are visited each epoch.
//!
//! - instance-balanced: every example once per epoch, shuffled (p_i = n_i / Σ n_j per class);
//! - class-balanced: a class uniformly (p = 1/C), then an example of it uniformly;
//! - power-q: a class with p_c = n_c^q / Σ n_j^q (q = ½ is square-root sampling), then an example.
//!
//! The order of epoch `e` depends only on `(seed, e)`, so a resumed run visits exactly the
//! examples an uninterrupted one would.

use rand::{rngs::StdRng, Rng, SeedableRng};

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sampling {
    Instance,
    Class,
    Power,
}

pub struct Sampler {
    pub sampling: Sampling,
    pub q: f64,
    /// Examples of each class.
    by_class: Vec<Vec<usize>>,
    n: usize,
}

impl Sampler {
    /// `classes[i]` is example i's class.
    pub fn new(sampling: Sampling, q: f64, classes: &[usize], num_classes: usize) -> Self {
        let mut by_class = vec![Vec::new(); num_classes];
        for (i, &c) in classes.iter().enumerate() {
            by_class[c].push(i);
        }
        Sampler { sampling, q, by_class, n: classes.len() }
    }

    /// Class probabilities this sampler draws with (instance: proportional to size).
    pub fn class_probabilities(&self) -> Vec<f64> {
        let q = match self.sampling {
            Sampling::Instance => 1.0,
            Sampling::Class => 0.0,
            Sampling::Power => self.q,
        };
        let w: Vec<f64> = self.by_class.iter().map(|v| if v.is_empty() { 0.0 } else { (v.len() as f64).powf(q) }).collect();
        let s: f64 = w.iter().sum();
        w.iter().map(|x| x / s).collect()
    }

    /// The visiting order of epoch `epoch`: `n` example indices.
    pub fn epoch_order(&self, seed: u64, epoch: u64) -> Vec<usize> {
        let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(epoch));
        match self.sampling {
            Sampling::Instance => {
                let mut order: Vec<usize> = (0..self.n).collect();
                for i in (1..order.len()).rev() {
                    order.swap(i, rng.random_range(0..=i));
                }
                order
            }
            _ => {
                let p = self.class_probabilities();
                (0..self.n)
                    .map(|_| {
                        let mut u: f64 = rng.random();
                        let mut c = p.len() - 1;
                        for (k, pk) in p.iter().enumerate() {
                            if u < *pk {
                                c = k;
                                break;
                            }
                            u -= pk;
                        }
                        let members = &self.by_class[c];
                        members[rng.random_range(0..members.len())]
                    })
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_follow_the_stated_probabilities() {
        // 1:20 imbalance.
        let classes: Vec<usize> = (0..2100).map(|i| if i < 100 { 0 } else { 1 }).collect();
        let frac0 = |s: &Sampler| {
            let order = s.epoch_order(3, 0);
            order.iter().filter(|&&i| classes[i] == 0).count() as f64 / order.len() as f64
        };
        let inst = Sampler::new(Sampling::Instance, 1.0, &classes, 2);
        let mut o = inst.epoch_order(1, 0);
        o.sort();
        assert_eq!(o, (0..2100).collect::<Vec<_>>(), "instance: each example once");
        assert!((frac0(&Sampler::new(Sampling::Class, 0.0, &classes, 2)) - 0.5).abs() < 0.04);
        let sqrt = Sampler::new(Sampling::Power, 0.5, &classes, 2);
        let want = 10.0 / (10.0 + 2000f64.sqrt());
        assert!((sqrt.class_probabilities()[0] - want).abs() < 1e-9);
        assert!((frac0(&sqrt) - want).abs() < 0.04);
    }

    #[test]
    fn order_depends_only_on_seed_and_epoch() {
        let s = Sampler::new(Sampling::Class, 0.0, &[0, 1, 1, 1], 2);
        assert_eq!(s.epoch_order(9, 2), s.epoch_order(9, 2));
        assert_ne!(s.epoch_order(9, 2), s.epoch_order(9, 3));
    }
}
