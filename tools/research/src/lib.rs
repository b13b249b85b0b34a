//! Shared pieces of the research binaries.
use candle_core::Device;
use gnsm::eval::Protocol;
use gnsm::{FitSummary, Gnsm, GnsmConfig};

/// Fit `config` on the protocol's train rows, validated on its val rows, on the CPU.
pub fn fit_on_split(
    protocol: &Protocol<'_>,
    config: &GnsmConfig,
) -> anyhow::Result<(Gnsm, FitSummary)> {
    let split = protocol.split();
    Ok(Gnsm::fit_rows(
        config,
        protocol.schema().clone(),
        protocol.table(),
        &split.train,
        &split.val,
        &Device::Cpu,
        &mut |_| {},
    )?)
}
