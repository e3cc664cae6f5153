use super::*;

fn layer(out: usize, inp: usize, seed: u32) -> (Int8Linear, Vec<f32>) {
    let w: Vec<f32> = (0..out * inp).map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 2001) as f32 / 1000.0 - 1.0).collect();
    let (q, s) = crate::model::quantize::quantize_rows(&w, out, inp);
    let bias: Vec<f32> = (0..out).map(|j| j as f32 * 0.01 - 0.3).collect();
    (Int8Linear::new(&q, s, bias, out, inp), w)
}

fn input(rows: usize, k: usize) -> Vec<f32> {
    (0..rows * k).map(|i| ((i * 7919 % 1013) as f32 / 506.0 - 1.0) * if i % 97 == 0 { 8.0 } else { 1.0 }).collect()
}

#[test]
fn every_kernel_here_equals_the_portable_one() {
    let names = check_kernels().unwrap();
    assert_eq!(names[0], kernel_name());
    assert_eq!(names.last(), Some(&"portable"));
}

/// Through the pool too, the layer's output is the portable kernel's, and the int8 product
/// is close to the f32 one.
#[test]
fn forward_equals_portable_and_approximates_f32() {
    for (m, n, k) in [(1, 1, 1), (3, 5, 70), (5, 9, 384), (17, 13, 203), (6, 100, 64), (128, 40, 1536)] {
        let (l, w) = layer(n, k, m as u32);
        let x = input(m, k);
        let qx = QuantRows::new(&x, m, k);
        // NaN where the kernel writes nothing: `assert_eq` below fails on any NaN.
        let slow = l.product_nan_filled(portable, &qx, m);
        let t = Tensor::from_vec(x.clone(), (m, k), &Device::Cpu).unwrap();
        let y: Vec<f32> = l.forward(&t).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(y, slow, "{m}x{n}x{k}: forward ({})", kernel_name());
        let mut worst = 0f32;
        for i in 0..m {
            for j in 0..n {
                let exact: f32 = l.bias[j] + (0..k).map(|p| x[i * k + p] * w[j * k + p]).sum::<f32>();
                let norm: f32 = (0..k).map(|p| x[i * k + p].abs()).sum::<f32>();
                worst = worst.max((y[i * n + j] - exact).abs() / norm.max(1e-6));
            }
        }
        // Two roundings of at most half a step each (1/254 of the activation row's range,
        // 1/254 of each weight row's max): the error per unit of |x|₁ stays under 2 %.
        assert!(worst < 0.02, "{m}x{n}x{k}: relative error {worst}");
    }
}

/// Rows of every sign pattern come back within half a step, in [0, 127], with zero exact.
#[test]
fn activation_rows_round_trip() {
    let rows: [&[f32]; 6] = [
        &[0.0; 5],
        &[0.5, 1.0, 2.0, 3.25, 0.0, 7.0, 1e-3],
        &[-4.0, -1.5, -0.25, -3.0, 0.0],
        &[-0.17, 0.0, 3.0, 11.5, -0.05, 0.4, 2.2, 9.9, 0.01, -0.1, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 0.3],
        &[-20.0, 0.1, -0.2, 0.3, 1.0, -1.0, 5.0],
        &[f32::NAN, 1.0, -1.0, 0.5],
    ];
    for row in rows {
        let k = row.len();
        let q = QuantRows::new(row, 1, k);
        assert_eq!(q.q.len(), padded_k(k));
        let (s, z) = (q.scale[0], q.zero[0]);
        assert!((0..=127).contains(&z), "{row:?}: zero point {z}");
        for (v, &u) in row.iter().zip(&q.q) {
            assert!(u <= 127, "{row:?}: {u}");
            if v.is_nan() {
                continue;
            }
            let back = s * (u as i32 - z) as f32;
            assert!((back - v).abs() <= s * 0.5 + 1e-6, "{row:?}: {v} -> {u} -> {back} (step {s})");
            if *v == 0.0 {
                assert_eq!(back, 0.0, "{row:?}: zero is exact");
            }
        }
        assert!(q.q[k..].iter().all(|&u| u == 0), "padding stays zero");
    }
}

fn rows(t: &Tensor) -> Vec<Vec<f32>> {
    t.flatten_to(t.rank() - 2).unwrap().to_vec2().unwrap()
}

/// Stacked layers compute each part's outputs bit for bit, side by side.
#[test]
fn stacked_layers_equal_the_parts() {
    let parts = [layer(5, 70, 1).0, layer(16, 70, 2).0, layer(33, 70, 3).0];
    let stacked = Int8Linear::stack(&[&parts[0], &parts[1], &parts[2]]);
    assert_eq!(stacked.out_dim(), 54);
    let x = Tensor::from_vec(input(2 * 9, 70), (2, 9, 70), &Device::Cpu).unwrap();
    let got = rows(&stacked.forward(&x).unwrap());
    let each: Vec<Vec<Vec<f32>>> = parts.iter().map(|l| rows(&l.forward(&x).unwrap())).collect();
    for (i, row) in got.iter().enumerate() {
        let want: Vec<f32> = each.iter().flat_map(|p| p[i].clone()).collect();
        assert_eq!(row, &want, "row {i}");
    }
}

/// Strips of rows, each quantising its own rows, give the bits of strips of columns over rows
/// quantised at once (and so does `forward`, whichever it picks), and the epilogue sees every
/// row once, whole, with its index.
#[test]
fn row_strips_equal_column_strips() {
    for (m, n, k) in [(1, 5, 70), (2, 9, 384), (17, 13, 203), (128, 100, 64), (40, 384, 1536)] {
        let (l, _) = layer(n, k, 5);
        let x = input(m, k);
        // Column strips over the pool, all rows quantised at once.
        let cols: Vec<Vec<f32>> = l.product_nan_filled(kernel(), &QuantRows::new(&x, m, k), m).chunks(n).map(|r| r.to_vec()).collect();
        let t = Tensor::from_vec(x, (m, k), &Device::Cpu).unwrap();
        assert_eq!(rows(&l.forward(&t).unwrap()), cols, "{m}x{n}x{k}: forward");
        let mut want = cols;
        want.iter_mut().enumerate().for_each(|(i, row)| row.iter_mut().for_each(|v| *v = *v * 2.0 + i as f32));
        let got = l.forward_rows(&t, &|i, row| row.iter_mut().for_each(|v| *v = *v * 2.0 + i as f32)).unwrap();
        assert_eq!(rows(&got), want, "{m}x{n}x{k}: row strips");
    }
}

/// GELU applied per strip gives the bits of GELU applied to the whole output afterwards,
/// through the pool (several strips) and without it.
#[test]
fn gelu_epilogue_equals_gelu_after() {
    for (m, n, k) in [(3, 5, 70), (128, 100, 64), (40, 1536, 384)] {
        let (l, _) = layer(n, k, 7);
        let x = Tensor::from_vec(input(m, k), (m, k), &Device::Cpu).unwrap();
        let want = crate::model::norm::gelu_erf(&l.forward(&x).unwrap(), false).unwrap();
        assert_eq!(rows(&l.forward_gelu(&x).unwrap()), rows(&want), "{m}x{n}x{k}");
    }
}

#[test]
fn dequantize_inverts_the_stored_rows() {
    let (l, w) = layer(7, 100, 3);
    let back = l.dequantize();
    let worst = back.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst <= 1.0 / 254.0 + 1e-6, "{worst}");
    assert_eq!(l.bias().len(), 7);
}

/// Both packings put every weight of a padded matrix at its own index inside the buffer, and
/// the k-pair one holds each group of 8 columns contiguous as `[k / 2][8][2]`, as the
/// SIMD128 kernel reads it.
#[test]
fn packings_are_permutations() {
    for (cols, kp) in [(16, 4), (32, 384), (48, 36)] {
        for pairs in [false, true] {
            let mut seen = vec![false; cols * kp];
            for j in 0..cols {
                for k in 0..kp {
                    let at = index_in(pairs, kp, j, k);
                    assert!(at < seen.len() && !seen[at], "pairs {pairs}: [{j}][{k}] at {at}");
                    seen[at] = true;
                }
            }
        }
        for (j, k) in [(0, 0), (9, 3), (cols - 1, kp - 1)] {
            assert_eq!(index_in(true, kp, j, k), j / GROUP * GROUP * kp + k / 2 * 2 * GROUP + j % GROUP * 2 + k % 2);
        }
    }
}
