//! The reference case of tools/msma_reference.py, shared by the mixture tests.

use msma::{GaussianMixture, Matrix};

/// 40 rows of two columns, `x_i = (sin(1.3 i) + 0.1 (i mod 3), cos(0.7 i)·(1 + (i mod 2)))`.
pub fn reference_data() -> Matrix {
    let rows: Vec<Vec<f64>> = (0..40)
        .map(|i| {
            let f = f64::from(i);
            vec![
                (1.3 * f).sin() + 0.1 * f64::from(i % 3),
                (0.7 * f).cos() * f64::from(1 + i % 2),
            ]
        })
        .collect();
    Matrix::from_rows(&rows).unwrap()
}

/// The fixed starting mixture of the reference EM run.
pub fn reference_init() -> GaussianMixture {
    let means = Matrix::from_rows(&[vec![0.0, 0.0], vec![1.0, 1.0], vec![-1.0, 0.5]]).unwrap();
    let covs = vec![1.0, 0.2, 0.2, 0.8, 0.5, 0.0, 0.0, 0.5, 0.3, -0.1, -0.1, 0.6];
    GaussianMixture::from_parameters(vec![0.5, 0.3, 0.2], &means, covs).unwrap()
}
