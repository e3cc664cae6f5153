//! Pictures for the training report: the loss/metric curve and the confusion matrix, as SVG
//! (no plotting dependency; any browser shows them).

use std::fmt::Write;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Training loss per step (smoothed) and the dev metric per evaluation, on two y-axes.
pub fn curve_svg(losses: &[f32], evals: &[(usize, f64)], metric: &str) -> String {
    let (w, h, pad) = (720.0, 360.0, 50.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
    );
    let steps = losses.len().max(1) as f64;
    let x = |s: f64| pad + (w - 2.0 * pad) * s / steps;
    // Exponential moving average so the curve is readable.
    let mut ema = Vec::with_capacity(losses.len());
    let mut acc = losses.first().copied().unwrap_or(0.0) as f64;
    for &l in losses {
        acc = 0.95 * acc + 0.05 * l as f64;
        ema.push(acc);
    }
    let max_loss = ema.iter().cloned().fold(1e-9, f64::max);
    let y_loss = |v: f64| h - pad - (h - 2.0 * pad) * v / max_loss;
    let y_metric = |v: f64| h - pad - (h - 2.0 * pad) * v;
    let _ = write!(svg, "<line x1=\"{pad}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>", h - pad, w - pad, h - pad);
    let _ = write!(svg, "<line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{}\" stroke=\"#333\"/>", h - pad);
    let pts: Vec<String> = ema.iter().enumerate().map(|(i, v)| format!("{:.1},{:.1}", x(i as f64), y_loss(*v))).collect();
    let _ = write!(svg, "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"{}\"/>", pts.join(" "));
    let mpts: Vec<String> = evals.iter().map(|(s, m)| format!("{:.1},{:.1}", x(*s as f64), y_metric(*m))).collect();
    let _ = write!(svg, "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" points=\"{}\"/>", mpts.join(" "));
    for (s, m) in evals {
        let _ = write!(svg, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#d62728\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#d62728\">{:.3}</text>", x(*s as f64), y_metric(*m), x(*s as f64) + 4.0, y_metric(*m) - 6.0, m);
    }
    let _ = write!(
        svg,
        "<text x=\"{pad}\" y=\"20\" fill=\"#1f77b4\">training loss (EMA), max {max_loss:.3}</text>\
         <text x=\"{}\" y=\"20\" fill=\"#d62728\" text-anchor=\"end\">dev {} (0–1)</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">step (of {})</text></svg>",
        w - pad,
        escape(metric),
        w / 2.0,
        h - 12.0,
        losses.len()
    );
    svg
}

/// Rows = gold, columns = predicted; cells shaded by row-normalised frequency.
pub fn confusion_svg(labels: &[String], m: &[Vec<usize>]) -> String {
    let n = labels.len();
    let cell = if n > 20 { 18.0 } else { 40.0 };
    let left = 110.0;
    let top = 110.0;
    let size = left + cell * n as f64 + 20.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{size}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
         <text x=\"{left}\" y=\"14\">predicted →   (rows: gold)</text>",
        top + cell * n as f64 + 20.0
    );
    for (i, l) in labels.iter().enumerate() {
        let c = top + cell * i as f64 + cell / 2.0;
        let _ = write!(svg, "<text x=\"{}\" y=\"{c}\" text-anchor=\"end\" dominant-baseline=\"middle\">{}</text>", left - 6.0, escape(l));
        let _ = write!(svg, "<text transform=\"translate({},{}) rotate(-60)\">{}</text>", left + cell * i as f64 + cell / 2.0, top - 6.0, escape(l));
    }
    for (i, row) in m.iter().enumerate() {
        let total: usize = row.iter().sum::<usize>().max(1);
        for (j, &v) in row.iter().enumerate() {
            let f = v as f64 / total as f64;
            let shade = (255.0 * (1.0 - f)).round() as u8;
            let (x, y) = (left + cell * j as f64, top + cell * i as f64);
            let _ = write!(svg, "<rect x=\"{x}\" y=\"{y}\" width=\"{cell}\" height=\"{cell}\" fill=\"rgb({shade},{shade},255)\" stroke=\"#ccc\"/>");
            if n <= 20 {
                let color = if f > 0.5 { "white" } else { "black" };
                let _ = write!(svg, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" dominant-baseline=\"middle\" fill=\"{color}\">{v}</text>", x + cell / 2.0, y + cell / 2.0);
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    #[test]
    fn svgs_are_well_formed_enough() {
        let c = super::curve_svg(&[1.0, 0.8, 0.5], &[(3, 0.7)], "macro_f1");
        assert!(c.starts_with("<svg") && c.ends_with("</svg>") && c.contains("0.700"));
        let m = super::confusion_svg(&["a<b".into(), "c".into()], &[vec![3, 1], vec![0, 4]]);
        assert!(m.contains("a&lt;b") && m.contains(">4</text>"));
    }
}
