//! A vectorisable single-precision exponential.

/// `eˣ` in f32 without a libm call, so that loops over it vectorise (the scoring passes'
/// softmaxes take most of their time in `exp`): Cephes' `expf` (range
/// reduction by ln 2 in two parts, a degree-5 polynomial on [−½ ln 2, ½ ln 2], the exponent
/// set by bits), within 2 ulp of `f32::exp` (tested); 0 below −87.3 and +∞ above 88.7.
///
/// ```
/// let x = 1.5f32;
/// assert!((gnsm_noise::exp_f32(x) - x.exp()).abs() <= 2.0 * f32::EPSILON * x.exp());
/// ```
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Plain multiplies and adds, and rounding by the 1.5·2²³ trick: without FMA and SSE4.1
    // in the target, `mul_add` and `round` are library calls that stop vectorisation.
    const ROUND: f32 = 12_582_912.0;
    let clamped = x.clamp(-87.3, 88.7);
    let n = (clamped * LOG2E + ROUND) - ROUND;
    let r = clamped - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    let scaled = e * f32::from_bits(((n as i32 + 127) as u32) << 23);
    if x < -87.3 {
        0.0
    } else if x > 88.7 {
        f32::INFINITY
    } else {
        scaled
    }
}

#[cfg(test)]
mod tests {
    use super::exp_f32;

    #[test]
    fn exp_f32_is_within_two_ulp_of_std() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (got, want) = (exp_f32(x), x.exp());
            let ulp = f64::from(want) * f64::from(f32::EPSILON);
            worst = worst.max(f64::from((got - want).abs()) / ulp);
            x += 0.000_731;
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(-100.0), 0.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(100.0), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
    }
}
