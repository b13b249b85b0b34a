//! Small dense kernels: matrixmultiply's dgemm behind safe wrappers, and the precision
//! Cholesky factor of a covariance.

use nalgebra::DMatrix;

/// `c = a·b` for row-major `a` (m×k), `b` (k×n), `c` (m×n).
pub(crate) fn matmul(m: usize, k: usize, n: usize, a: &[f64], b: &[f64], c: &mut [f64]) {
    assert!(
        a.len() >= m * k && b.len() >= k * n && c.len() >= m * n,
        "matmul: buffer too small"
    );
    if m == 0 || n == 0 {
        return;
    }
    #[allow(unsafe_code)]
    // SAFETY: the lengths were checked above; the strides describe dense row-major
    // matrices inside those lengths, and `c` does not alias `a` or `b` (it is &mut).
    unsafe {
        matrixmultiply::dgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            n as isize,
            1,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// `c += aᵀ·a` for row-major `a` (rows×d), `c` (d×d).
pub(crate) fn add_gram(rows: usize, d: usize, a: &[f64], c: &mut [f64]) {
    assert!(
        a.len() >= rows * d && c.len() >= d * d,
        "add_gram: buffer too small"
    );
    if rows == 0 || d == 0 {
        return;
    }
    #[allow(unsafe_code)]
    // SAFETY: as in `matmul`; aᵀ is `a` read with swapped strides (row stride 1, column
    // stride d), which stays inside `a`'s checked length.
    unsafe {
        matrixmultiply::dgemm(
            d,
            rows,
            d,
            1.0,
            a.as_ptr(),
            1,
            d as isize,
            a.as_ptr(),
            d as isize,
            1,
            1.0,
            c.as_mut_ptr(),
            d as isize,
            1,
        );
    }
}

/// The upper-triangular precision factor `P = (L⁻¹)ᵀ` of `cov = L·Lᵀ` (so that
/// `(x-μ)ᵀΣ⁻¹(x-μ) = ‖(x-μ)ᵀP‖²`), and `ln det P`. If the factorisation fails, `extra`
/// diagonal regularisation grows from `reg` by ×10 (at least 1e-10) up to 12 times; the
/// regularisation that worked is returned (0 when none was needed).
pub(crate) fn precision_cholesky(cov: &[f64], d: usize, reg: f64) -> Option<(Vec<f64>, f64, f64)> {
    let mut extra = 0.0;
    for _ in 0..=12 {
        let mut m = DMatrix::from_row_slice(d, d, cov);
        for i in 0..d {
            m[(i, i)] += extra;
        }
        if let Some(chol) = m.cholesky() {
            let l = chol.l();
            let l_inv = l
                .solve_lower_triangular(&DMatrix::identity(d, d))
                .expect("a Cholesky factor has a non-zero diagonal");
            let mut p = vec![0.0; d * d];
            for i in 0..d {
                for j in 0..d {
                    p[i * d + j] = l_inv[(j, i)];
                }
            }
            let log_det: f64 = (0..d).map(|i| p[i * d + i].ln()).sum();
            if log_det.is_finite() {
                return Some((p, log_det, extra));
            }
        }
        extra = if extra == 0.0 {
            reg.max(1e-10)
        } else {
            extra * 10.0
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_and_gram() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2×3
        let b = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]; // 3×2
        let mut c = [0.0; 4];
        matmul(2, 3, 2, &a, &b, &mut c);
        assert_eq!(c, [4.0, 5.0, 10.0, 11.0]);
        let mut g = [0.0; 9];
        add_gram(2, 3, &a, &mut g);
        assert_eq!(g, [17.0, 22.0, 27.0, 22.0, 29.0, 36.0, 27.0, 36.0, 45.0]);
    }

    #[test]
    fn precision_factor_inverts_covariance() {
        let cov = [4.0, 2.0, 2.0, 3.0];
        let (p, log_det, extra) = precision_cholesky(&cov, 2, 0.0).unwrap();
        assert_eq!(extra, 0.0);
        // P·Pᵀ = Σ⁻¹ = [[3, -2], [-2, 4]] / 8.
        let inv = [
            p[0] * p[0] + p[1] * p[1],
            p[0] * p[2] + p[1] * p[3],
            p[2] * p[2] + p[3] * p[3],
        ];
        approx::assert_relative_eq!(inv[0], 3.0 / 8.0, epsilon = 1e-12);
        approx::assert_relative_eq!(inv[1], -2.0 / 8.0, epsilon = 1e-12);
        approx::assert_relative_eq!(inv[2], 4.0 / 8.0, epsilon = 1e-12);
        approx::assert_relative_eq!(log_det, -0.5 * 8f64.ln(), epsilon = 1e-12);
        // A singular covariance gets regularised instead of failing.
        let (_, _, extra) = precision_cholesky(&[1.0, 1.0, 1.0, 1.0], 2, 1e-6).unwrap();
        assert!(extra > 0.0);
    }
}
