//! Wall time of the MSMA Gaussian mixture on census-sized score norms (250,000 × 20, 9
//! components, and the full {3,5,7,9} 5-fold selection), against scikit-learn's
//! GaussianMixture on the same data and settings in the same run.
//!
//! ```sh
//! RAYON_NUM_THREADS=2 cargo run --release -p msma --example gmm_timing [-- ROWS]
//! ```
//! The scikit-learn side runs `benches/gmm_sklearn.py` (needs `pip install scikit-learn`)
//! with OMP/OpenBLAS limited to the same thread count; it is skipped with a note when Python
//! or scikit-learn is missing.

use std::io::Write;
use std::process::Command;
use std::time::Instant;

use msma::{select_components, GmmParams, SelectionParams};

#[path = "support/synthetic.rs"]
mod synthetic;

fn main() {
    let rows: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(250_000);
    let threads = rayon::current_num_threads();
    let x = synthetic::known_mixture(rows, 20, 9, 0);
    println!("data: {rows} × 20 (synthetic 9-component mixture), {threads} threads");

    let t = Instant::now();
    let gmm = GmmParams::new(9).seed(0).fit(&x).expect("fit");
    let fit9 = t.elapsed().as_secs_f64();
    println!(
        "msma  fit k=9:            {fit9:8.2} s  ({} EM iterations, mean ll {:.4})",
        gmm.report().n_iter,
        gmm.report().lower_bound
    );

    let t = Instant::now();
    let selection = select_components(
        &x,
        &GmmParams::default().seed(0),
        &SelectionParams::default(),
    )
    .expect("selection");
    let refit = GmmParams::new(selection.chosen)
        .seed(0)
        .fit(&x)
        .expect("refit");
    let select = t.elapsed().as_secs_f64();
    println!(
        "msma  select {{3,5,7,9}} + refit: {select:8.2} s  (chose {}, refit {} iterations)",
        selection.chosen,
        refit.report().n_iter
    );

    // Same data for scikit-learn, as raw little-endian f64.
    let path = std::env::temp_dir().join(format!("gmm_timing_{rows}.f64"));
    let mut file = std::fs::File::create(&path).expect("temp file");
    for v in x.as_slice() {
        file.write_all(&v.to_le_bytes()).expect("write");
    }
    drop(file);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../benches/gmm_sklearn.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(&path)
        .arg(rows.to_string())
        .arg("20")
        .env("OMP_NUM_THREADS", threads.to_string())
        .env("OPENBLAS_NUM_THREADS", threads.to_string())
        .env("MKL_NUM_THREADS", threads.to_string())
        .env_remove("OPENBLAS_CORETYPE")
        .env_remove("OPENBLAS_L2_SIZE")
        .output();
    let _ = std::fs::remove_file(&path);
    match output {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            print!("{text}");
            let find = |key: &str| {
                text.lines()
                    .find(|l| l.starts_with(key))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<f64>().ok())
            };
            if let (Some(s9), Some(ssel)) = (find("sklearn_fit9"), find("sklearn_select")) {
                println!(
                    "speed-up fit k=9: {:.2}×   selection + refit: {:.2}×",
                    s9 / fit9,
                    ssel / select
                );
            }
        }
        Ok(out) => println!(
            "scikit-learn side failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => println!("scikit-learn side skipped: python3 not runnable ({e})"),
    }
}
