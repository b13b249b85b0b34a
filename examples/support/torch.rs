//! Running the PyTorch side of a benchmark (`benches/tab_resnet_torch.py`,
//! `benches/unet_torch.py`), shared by `#[path]`: the interpreter is `$GNSM_PYTHON` (a
//! virtual environment with torch) or `python3`.

use std::process::Command;

/// Run the tab-ResNet's PyTorch script with `args`; its stdout, or why it did not run.
#[allow(dead_code)] // not every example runs the tab-ResNet
pub fn run(args: &[&str]) -> Result<String, String> {
    run_script("tab_resnet_torch.py", args)
}

/// Run `benches/<script>` with `args`; its stdout, or why it did not run.
pub fn run_script(script: &str, args: &[&str]) -> Result<String, String> {
    let python = std::env::var("GNSM_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = format!("{}/benches/{script}", env!("CARGO_MANIFEST_DIR"));
    match Command::new(&python).arg(&script).args(args).output() {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(out) => Err(format!(
            "{python} {script} failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )),
        Err(e) => Err(format!("{python} not run: {e}")),
    }
}

/// The numbers after `key` on the line that starts with it.
pub fn values(text: &str, key: &str) -> Option<Vec<f64>> {
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(key))?;
    Some(
        line.split_whitespace()
            .skip(1)
            .filter_map(|s| s.parse().ok())
            .collect(),
    )
}

/// Median, minimum and maximum of a sample (NaN for an empty one).
pub fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}
