//! The EM iterations of [`GaussianMixture`]: E step, M step (with re-seeding of emptied
//! components) and the precision factors. Each step runs on the dense rows or, where it
//! pays, on their nonzeros ([`super::sparse`]).

use rayon::prelude::*;

use super::*;

impl GaussianMixture {
    pub(super) fn run_em(&mut self, params: &GmmParams, x: &EmRows<'_>) -> Result<(), MsmaError> {
        let mut lower_bound = f64::NEG_INFINITY;
        let mut reseed_budget = self.n_components();
        for iter in 1..=params.max_iter {
            let previous = lower_bound;
            let e = self.e_step(x);
            let reseed = if reseed_budget > 0 {
                Some(&e.row_ll[..])
            } else {
                None
            };
            let done = self.m_step(x, &e.resp, params.reg_covar, reseed)?;
            reseed_budget = reseed_budget.saturating_sub(done);
            lower_bound = e.mean_ll;
            self.report.history.push(lower_bound);
            self.report.n_iter = iter;
            if (lower_bound - previous).abs() < params.tol {
                self.report.converged = true;
                break;
            }
        }
        self.report.lower_bound = lower_bound;
        Ok(())
    }

    /// `ln w_k + ln N(x_i | μ_k, Σ_k)` for every row and component, N×K.
    pub(super) fn weighted_log_prob(&self, x: &EmRows<'_>) -> Vec<f64> {
        match &x.sparse {
            Some(sparse) => self.weighted_log_prob_sparse(sparse),
            None => self.weighted_log_prob_dense(x.dense),
        }
    }

    fn weighted_log_prob_dense(&self, x: &Matrix) -> Vec<f64> {
        let (k, d) = (self.n_components(), self.n_features);
        let n = x.rows();
        let mut out = vec![0.0; n * k];
        let log_w: Vec<f64> = self.weights.iter().map(|w| w.ln()).collect();
        x.as_slice()
            .par_chunks(CHUNK * d)
            .zip(out.par_chunks_mut(CHUNK * k))
            .for_each(|(rows, out)| {
                let c = rows.len() / d;
                let mut centered = vec![0.0; c * d];
                let mut y = vec![0.0; c * d];
                for comp in 0..k {
                    let mean = &self.means[comp * d..(comp + 1) * d];
                    for (dst, src) in centered.chunks_exact_mut(d).zip(rows.chunks_exact(d)) {
                        for ((o, v), m) in dst.iter_mut().zip(src).zip(mean) {
                            *o = v - m;
                        }
                    }
                    let p = &self.precisions_chol[comp * d * d..(comp + 1) * d * d];
                    matmul(c, d, d, &centered, p, &mut y);
                    let constant = log_w[comp] + self.log_det[comp] - 0.5 * d as f64 * LN_2PI;
                    for (i, yi) in y.chunks_exact(d).enumerate() {
                        let sq: f64 = yi.iter().map(|v| v * v).sum();
                        out[i * k + comp] = constant - 0.5 * sq;
                    }
                }
            });
        out
    }

    pub(super) fn e_step(&self, x: &EmRows<'_>) -> Expectation {
        let k = self.n_components();
        let mut resp = self.weighted_log_prob(x);
        let row_ll: Vec<f64> = resp
            .par_chunks_mut(k)
            .map(|row| {
                let lse = logsumexp(row);
                row.iter_mut().for_each(|v| *v = (*v - lse).exp());
                lse
            })
            .collect();
        let mean_ll = row_ll.iter().sum::<f64>() / x.dense.rows() as f64;
        Expectation {
            mean_ll,
            row_ll,
            resp,
        }
    }

    /// M-step from responsibilities; with `reseed`, components with (almost) no mass are
    /// moved to the worst-explained rows. Returns the number of re-seeded components.
    pub(super) fn m_step(
        &mut self,
        x: &EmRows<'_>,
        resp: &[f64],
        reg: f64,
        reseed: Option<&[f64]>,
    ) -> Result<usize, MsmaError> {
        let (k, d) = (self.n_components(), self.n_features);
        let mut nk = match &x.sparse {
            Some(sparse) => self.sparse_moments(sparse, resp),
            None => self.dense_moments(x.dense, resp),
        };
        for comp in 0..k {
            let block = &mut self.covariances[comp * d * d..(comp + 1) * d * d];
            for j in 0..d {
                block[j * d + j] += reg;
            }
        }
        let x = x.dense;
        let n = x.rows();
        let mut reseeded = 0;
        if let Some(row_ll) = reseed {
            let dead: Vec<usize> = (0..k).filter(|&c| nk[c] < 0.5).collect();
            if !dead.is_empty() {
                let mut worst: Vec<usize> = (0..n).collect();
                worst.sort_by(|&a, &b| row_ll[a].total_cmp(&row_ll[b]));
                let variance = column_variance(x);
                for (comp, &row) in dead.iter().zip(&worst) {
                    self.means[comp * d..(comp + 1) * d].copy_from_slice(x.row(row));
                    let block = &mut self.covariances[comp * d * d..(comp + 1) * d * d];
                    block.fill(0.0);
                    for j in 0..d {
                        block[j * d + j] = variance[j] + reg.max(1e-6);
                    }
                    nk[*comp] = 1.0;
                    reseeded += 1;
                }
            }
        }
        let total: f64 = nk.iter().sum();
        self.weights = nk.iter().map(|v| v / total).collect();
        self.update_precisions(reg, true)?;
        self.report.reseeded += reseeded;
        Ok(reseeded)
    }

    /// Masses (with 10·ε), means and unregularised covariances from the dense rows.
    fn dense_moments(&mut self, x: &Matrix, resp: &[f64]) -> Vec<f64> {
        let (k, d) = (self.n_components(), self.n_features);
        // nk and Σ r x, accumulated per chunk in parallel.
        let (mut nk, sums) = x
            .as_slice()
            .par_chunks(CHUNK * d)
            .zip(resp.par_chunks(CHUNK * k))
            .map(|(rows, r)| {
                let mut nk = vec![0.0; k];
                let mut sums = vec![0.0; k * d];
                for (row, ri) in rows.chunks_exact(d).zip(r.chunks_exact(k)) {
                    for comp in 0..k {
                        nk[comp] += ri[comp];
                        let s = &mut sums[comp * d..(comp + 1) * d];
                        s.iter_mut().zip(row).for_each(|(s, v)| *s += ri[comp] * v);
                    }
                }
                (nk, sums)
            })
            .reduce(
                || (vec![0.0; k], vec![0.0; k * d]),
                |mut a, b| {
                    a.0.iter_mut().zip(&b.0).for_each(|(x, y)| *x += y);
                    a.1.iter_mut().zip(&b.1).for_each(|(x, y)| *x += y);
                    a
                },
            );
        nk.iter_mut().for_each(|v| *v += 10.0 * f64::EPSILON);
        for comp in 0..k {
            for j in 0..d {
                self.means[comp * d + j] = sums[comp * d + j] / nk[comp];
            }
        }
        // Weighted scatter Σ r (x-μ)(x-μ)ᵀ via Gram matrices of sqrt(r)-scaled centred rows.
        let means = &self.means;
        let scatter = x
            .as_slice()
            .par_chunks(CHUNK * d)
            .zip(resp.par_chunks(CHUNK * k))
            .map(|(rows, r)| {
                let c = rows.len() / d;
                let mut a = vec![0.0; c * d];
                let mut gram = vec![0.0; k * d * d];
                for comp in 0..k {
                    let mean = &means[comp * d..(comp + 1) * d];
                    for ((dst, src), ri) in a
                        .chunks_exact_mut(d)
                        .zip(rows.chunks_exact(d))
                        .zip(r.chunks_exact(k))
                    {
                        let w = ri[comp].sqrt();
                        dst.iter_mut()
                            .zip(src)
                            .zip(mean)
                            .for_each(|((o, v), m)| *o = w * (v - m));
                    }
                    add_gram(c, d, &a, &mut gram[comp * d * d..(comp + 1) * d * d]);
                }
                gram
            })
            .reduce(
                || vec![0.0; k * d * d],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                    a
                },
            );
        for comp in 0..k {
            let block = &mut self.covariances[comp * d * d..(comp + 1) * d * d];
            for (o, s) in block
                .iter_mut()
                .zip(&scatter[comp * d * d..(comp + 1) * d * d])
            {
                *o = s / nk[comp];
            }
        }
        nk
    }

    pub(super) fn update_precisions(&mut self, reg: f64, count: bool) -> Result<(), MsmaError> {
        let (k, d) = (self.n_components(), self.n_features);
        self.precisions_chol.resize(k * d * d, 0.0);
        self.log_det.resize(k, 0.0);
        for comp in 0..k {
            let cov = &self.covariances[comp * d * d..(comp + 1) * d * d];
            let (p, log_det, extra) =
                precision_cholesky(cov, d, reg).ok_or(MsmaError::SingularCovariance {
                    component: comp,
                    reg: reg.max(1e-10) * 1e11,
                })?;
            if extra > 0.0 {
                let block = &mut self.covariances[comp * d * d..(comp + 1) * d * d];
                for j in 0..d {
                    block[j * d + j] += extra;
                }
                if count {
                    self.report.regularised += 1;
                }
            }
            self.precisions_chol[comp * d * d..(comp + 1) * d * d].copy_from_slice(&p);
            self.log_det[comp] = log_det;
        }
        Ok(())
    }
}
