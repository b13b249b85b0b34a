//! The Python extension module `gnsm._gnsm`: the [`gnsm::Gnsm`] detector behind a small
//! class that takes tables as Arrow IPC streams. The Python package (`python/gnsm`) wraps it
//! as `gnsm.GNSM`, a PyOD-style estimator that accepts pandas DataFrames and pyarrow Tables;
//! this module is its engine, not an API of its own.
//!
//! Every long call (fit, score, explain, save, load) releases the GIL; every error reaches
//! Python as `gnsm.GnsmError` (a `ValueError`) or `OSError`, with the Rust message.

mod options;

use gnsm::data::Table;
use gnsm::{DecisionRule, Device, Gnsm};
use pyo3::create_exception;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::options::Options;

create_exception!(
    _gnsm,
    GnsmError,
    PyValueError,
    "A GNSM error: bad input, a bad setting, or a model file that cannot be used."
);

/// The Rust error as a Python exception: I/O as `OSError`, the rest as `GnsmError`.
fn to_py(error: gnsm::GnsmError) -> PyErr {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(inner) = source {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = inner.source();
    }
    match error {
        gnsm::GnsmError::Io { .. } => PyOSError::new_err(message),
        _ => GnsmError::new_err(message),
    }
}

/// An Arrow IPC stream as a table named `source` in errors.
fn table(ipc: &[u8], source: &str) -> Result<Table, gnsm::GnsmError> {
    Ok(Table::from_arrow_ipc(ipc, source)?)
}

/// The decision rule of the keyword arguments: `contamination` when given, else `alpha`
/// (0.01 when neither is).
fn rule(alpha: Option<f64>, contamination: Option<f64>) -> PyResult<DecisionRule> {
    let rule = match (alpha, contamination) {
        (Some(_), Some(_)) => {
            return Err(GnsmError::new_err("give alpha or contamination, not both"))
        }
        (_, Some(c)) => DecisionRule::Contamination(c),
        (Some(a), None) => DecisionRule::Alpha(a),
        (None, None) => DecisionRule::default(),
    };
    rule.validate().map_err(|e| to_py(e.into()))?;
    Ok(rule)
}

/// Little-endian f64 bytes (NumPy reads them with `frombuffer` without a copy per value).
fn f64_bytes<'py>(py: Python<'py>, values: &[f64]) -> Bound<'py, PyBytes> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    PyBytes::new(py, &bytes)
}

/// A fitted GNSM detector (the engine of `gnsm.GNSM`).
#[pyclass(module = "gnsm._gnsm", frozen)]
struct Detector {
    inner: Gnsm,
}

#[pymethods]
impl Detector {
    /// Fit on the rows of an Arrow stream. `options` is the JSON of the estimator's keyword
    /// arguments (see `gnsm.GNSM`); `label`, when given, names a 0/1 column whose 1-rows are
    /// left out of the fit. Returns the detector and the fit summary as JSON.
    #[staticmethod]
    #[pyo3(signature = (ipc, options, label=None))]
    fn fit(
        py: Python<'_>,
        ipc: &[u8],
        options: &str,
        label: Option<String>,
    ) -> PyResult<(Self, String)> {
        let options = Options::from_json(options).map_err(to_py)?;
        py.detach(|| {
            let mut config = options.config()?;
            if let Some(label) = label {
                config.schema.label = Some(label);
                config.schema.anomaly_value = Some("1".into());
            }
            let table = table(ipc, "X")?;
            let (inner, summary) = Gnsm::fit(&config, &table, &Device::Cpu)?;
            let summary = serde_json::to_string(&summary)
                .map_err(|e| gnsm::GnsmError::Invalid(format!("fit summary: {e}")))?;
            Ok((Self { inner }, summary))
        })
        .map_err(to_py)
    }

    /// Anomaly scores of every row (higher = more anomalous), as little-endian f64 bytes.
    fn scores<'py>(&self, py: Python<'py>, ipc: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let scores = py
            .detach(|| self.inner.score_table(&table(ipc, "X")?, None))
            .map_err(to_py)?;
        Ok(f64_bytes(py, &scores))
    }

    /// Conformal p-values of every row (small = anomalous), as little-endian f64 bytes.
    fn p_values<'py>(&self, py: Python<'py>, ipc: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let p = py
            .detach(|| self.inner.p_values(&table(ipc, "X")?, None))
            .map_err(to_py)?;
        Ok(f64_bytes(py, &p))
    }

    /// Scores, p-values and decisions of every row from one scoring pass: three
    /// little-endian f64 byte strings (p-values NaN without a calibration) and the
    /// threshold. The decisions are `score > threshold` (NaN threshold: none flagged).
    #[pyo3(signature = (ipc, alpha=None, contamination=None))]
    fn decisions<'py>(
        &self,
        py: Python<'py>,
        ipc: &[u8],
        alpha: Option<f64>,
        contamination: Option<f64>,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>, f64)> {
        let rule = rule(alpha, contamination)?;
        let scores = py
            .detach(|| self.inner.score_table(&table(ipc, "X")?, None))
            .map_err(to_py)?;
        let (p, threshold) = match self.inner.calibration() {
            Some(calibration) => (
                scores.iter().map(|&s| calibration.p_value(s)).collect(),
                calibration.threshold(rule).map_err(|e| to_py(e.into()))?,
            ),
            None => (vec![f64::NAN; scores.len()], f64::NAN),
        };
        Ok((f64_bytes(py, &scores), f64_bytes(py, &p), threshold))
    }

    /// The score above which a row is anomalous under `alpha` or `contamination`.
    #[pyo3(signature = (alpha=None, contamination=None))]
    fn threshold(&self, alpha: Option<f64>, contamination: Option<f64>) -> PyResult<f64> {
        self.inner
            .threshold(rule(alpha, contamination)?)
            .map_err(to_py)
    }

    /// Each row's score and its `top` largest per-column contributions, as JSON.
    fn explain(&self, py: Python<'_>, ipc: &[u8], top: usize) -> PyResult<String> {
        py.detach(|| {
            let table = table(ipc, "X")?;
            let rows: Vec<usize> = (0..table.rows()).collect();
            let mut explained = self.inner.explain(&table, &rows)?;
            for e in &mut explained {
                e.contributions.truncate(top);
            }
            serde_json::to_string(&explained)
                .map_err(|e| gnsm::GnsmError::Invalid(format!("explanations: {e}")))
        })
        .map_err(to_py)
    }

    /// Save to one checksummed file (the format `gnsm fit` writes), atomically.
    fn save(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
        py.detach(|| self.inner.save(&path)).map_err(to_py)
    }

    /// Load a model file written by `save` or by `gnsm fit`, verified before use.
    #[staticmethod]
    fn load(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Self> {
        py.detach(|| Gnsm::load(&path, &Device::Cpu))
            .map(|inner| Self { inner })
            .map_err(to_py)
    }

    /// The configuration the detector was fitted with, as JSON.
    fn config(&self) -> PyResult<String> {
        serde_json::to_string(self.inner.config()).map_err(|e| GnsmError::new_err(e.to_string()))
    }

    /// The fitted columns: (name, kind, number of categories) per column.
    fn columns(&self) -> Vec<(String, String, usize)> {
        self.inner
            .schema()
            .columns
            .iter()
            .map(|c| (c.name.clone(), format!("{:?}", c.kind), c.categories.len()))
            .collect()
    }

    /// Calibration rows held out at fit time (0 when none).
    fn calibration_rows(&self) -> usize {
        self.inner.calibration().map_or(0, |c| c.len())
    }
}

/// The full configuration the keyword arguments describe, as JSON (checked: an unknown key
/// or a bad value is an error naming it).
#[pyfunction]
fn resolve_config(options: &str) -> PyResult<String> {
    let config = Options::from_json(options)
        .and_then(|o| o.config())
        .map_err(to_py)?;
    serde_json::to_string(&config).map_err(|e| GnsmError::new_err(e.to_string()))
}

/// The extension module.
#[pymodule]
fn _gnsm(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Detector>()?;
    m.add_function(wrap_pyfunction!(resolve_config, m)?)?;
    m.add("GnsmError", m.py().get_type::<GnsmError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
