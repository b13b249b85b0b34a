//! Ground-truth masks made comparable with predictions.

/// Replace void pixels by the nearest labelled class (repeated 4-neighbour growth), so a
/// ground truth can be compared with predictions, which never contain void. A mask that is
/// all void becomes class 0.
///
/// ```
/// let mask = [0, 9, 9, 1];
/// assert_eq!(gnsm_segmentation::fill_void(&mask, 1, 4, 9), vec![0, 0, 1, 1]);
/// ```
pub fn fill_void(mask: &[u8], height: usize, width: usize, void: u8) -> Vec<u8> {
    let mut out = mask.to_vec();
    loop {
        let before = out.clone();
        let mut changed = false;
        let mut left = false;
        for i in 0..out.len() {
            if before[i] != void {
                continue;
            }
            let (y, x) = (i / width, i % width);
            let neighbours = [
                (y > 0).then(|| i - width),
                (y + 1 < height).then(|| i + width),
                (x > 0).then(|| i - 1),
                (x + 1 < width).then(|| i + 1),
            ];
            match neighbours
                .into_iter()
                .flatten()
                .find(|&j| before[j] != void)
            {
                Some(j) => {
                    out[i] = before[j];
                    changed = true;
                }
                None => left = true,
            }
        }
        if !left {
            return out;
        }
        if !changed {
            return out
                .into_iter()
                .map(|v| if v == void { 0 } else { v })
                .collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn void_fill_grows_from_labelled_neighbours() {
        // 3×3 with a void centre column: each void pixel takes its left neighbour first
        // when the pixel above is void as well.
        let mask = [1, 9, 2, 1, 9, 2, 1, 9, 2];
        let filled = fill_void(&mask, 3, 3, 9);
        assert!(filled.iter().all(|&v| v == 1 || v == 2));
        assert_eq!(fill_void(&[9, 9], 1, 2, 9), vec![0, 0]);
    }
}
