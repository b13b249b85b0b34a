//! E and M steps over the nonzero entries of each row, for rows that are mostly zeros (a
//! one-hot encoding has one hot entry per categorical block).
//!
//! The dense steps cost `N·D²` per component and iteration (the centred rows times the
//! precision factor, and the weighted Gram matrix). With `m` nonzeros in a row the same
//! numbers come from `m²` terms:
//!
//! * E step: `(x-μ)ᵀΛ(x-μ) = xᵀΛx − 2·xᵀ(Λμ) + μᵀΛμ` with `Λ = P·Pᵀ`, the precision, formed
//!   once per component (`D³`);
//! * M step: `Σ r (x-μ)(x-μ)ᵀ = Σ r x xᵀ − μ·sᵀ − s·μᵀ + (Σ r)·μμᵀ` with `s = Σ r x`, the
//!   first term scattered over the pairs of a row's nonzero indices.
//!
//! Both are the dense formulas rearranged, so they agree with the dense path to rounding
//! (pinned to 1e-9 relative in the tests). Work is split by component (M step) or by fixed
//! row chunks (E step), so results do not depend on the number of threads.

use rayon::prelude::*;

use super::*;
use crate::gmm::sparse_rows::SparseRows;

/// One component's precision `Λ = P·Pᵀ` (D×D), `Λμ` and `μᵀΛμ`.
struct Precision {
    lambda: Vec<f64>,
    lambda_mean: Vec<f64>,
    mean_form: f64,
}

impl GaussianMixture {
    fn precision(&self, comp: usize) -> Precision {
        let d = self.n_features;
        let p = &self.precisions_chol[comp * d * d..(comp + 1) * d * d];
        let mut p_t = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                p_t[j * d + i] = p[i * d + j];
            }
        }
        let mut lambda = vec![0.0; d * d];
        matmul(d, d, d, p, &p_t, &mut lambda);
        let mean = &self.means[comp * d..(comp + 1) * d];
        let lambda_mean: Vec<f64> = lambda
            .chunks_exact(d)
            .map(|row| row.iter().zip(mean).map(|(l, m)| l * m).sum())
            .collect();
        let mean_form = lambda_mean.iter().zip(mean).map(|(l, m)| l * m).sum();
        Precision {
            lambda,
            lambda_mean,
            mean_form,
        }
    }

    /// [`GaussianMixture::weighted_log_prob`] over the nonzeros of each row.
    pub(super) fn weighted_log_prob_sparse(&self, x: &SparseRows) -> Vec<f64> {
        let (k, d) = (self.n_components(), self.n_features);
        let forms: Vec<Precision> = (0..k).into_par_iter().map(|c| self.precision(c)).collect();
        let constants: Vec<f64> = (0..k)
            .map(|c| self.weights[c].ln() + self.log_det[c] - 0.5 * d as f64 * LN_2PI)
            .collect();
        let mut out = vec![0.0; x.rows() * k];
        out.par_chunks_mut(CHUNK * k)
            .enumerate()
            .for_each(|(chunk, out)| {
                let first = chunk * CHUNK;
                for (comp, form) in forms.iter().enumerate() {
                    for (i, o) in out.chunks_exact_mut(k).enumerate() {
                        let (idx, val) = x.row(first + i);
                        let q = quadratic_form(form, d, idx, val);
                        o[comp] = constants[comp] - 0.5 * q;
                    }
                }
            });
        out
    }

    /// Masses (with the dense path's 10·ε), means and unregularised covariances over the
    /// nonzeros of each row, one component per task.
    pub(super) fn sparse_moments(&mut self, x: &SparseRows, resp: &[f64]) -> Vec<f64> {
        let (k, d) = (self.n_components(), self.n_features);
        let n = x.rows();
        let moments: Vec<(f64, Vec<f64>, Vec<f64>)> = (0..k)
            .into_par_iter()
            .map(|comp| {
                let mut sum = vec![0.0; d];
                let mut outer = vec![0.0; d * d];
                let mut mass = 0.0;
                for i in 0..n {
                    let r = resp[i * k + comp];
                    if r == 0.0 {
                        continue;
                    }
                    mass += r;
                    let (idx, val) = x.row(i);
                    for (a, (&ia, &va)) in idx.iter().zip(val).enumerate() {
                        let ia = ia as usize;
                        let rv = r * va;
                        sum[ia] += rv;
                        let row = &mut outer[ia * d..(ia + 1) * d];
                        for (&ib, &vb) in idx[a..].iter().zip(&val[a..]) {
                            row[ib as usize] += rv * vb;
                        }
                    }
                }
                let nk = mass + 10.0 * f64::EPSILON;
                let mean: Vec<f64> = sum.iter().map(|s| s / nk).collect();
                // Σ r (x-μ)(x-μ)ᵀ from the upper triangle of Σ r x xᵀ.
                let mut cov = vec![0.0; d * d];
                for a in 0..d {
                    for b in a..d {
                        let scatter = outer[a * d + b] - mean[a] * sum[b] - sum[a] * mean[b]
                            + mass * mean[a] * mean[b];
                        let v = scatter / nk;
                        cov[a * d + b] = v;
                        cov[b * d + a] = v;
                    }
                }
                (nk, mean, cov)
            })
            .collect();
        let mut masses = Vec::with_capacity(k);
        for (comp, (nk, mean, cov)) in moments.into_iter().enumerate() {
            self.means[comp * d..(comp + 1) * d].copy_from_slice(&mean);
            self.covariances[comp * d * d..(comp + 1) * d * d].copy_from_slice(&cov);
            masses.push(nk);
        }
        masses
    }
}

/// `(x-μ)ᵀΛ(x-μ)` from the nonzeros `(idx, val)` of `x` (indices ascending), clamped at 0
/// against rounding.
fn quadratic_form(form: &Precision, d: usize, idx: &[u32], val: &[f64]) -> f64 {
    let mut q = form.mean_form;
    for (a, (&ia, &va)) in idx.iter().zip(val).enumerate() {
        let ia = ia as usize;
        let row = &form.lambda[ia * d..(ia + 1) * d];
        let mut inner = 0.5 * row[ia] * va;
        for (&ib, &vb) in idx[a + 1..].iter().zip(&val[a + 1..]) {
            inner += row[ib as usize] * vb;
        }
        q += 2.0 * va * (inner - form.lambda_mean[ia]);
    }
    q.max(0.0)
}
