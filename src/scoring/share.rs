//! The maximum-share control: a provider over its maximum share of a region's recent first
//! places goes second. The engine's snapshot applies it to new sessions, and the simulator's
//! baselines are bound by it through the same two functions.

/// A provider's share of a region's recent first places: its decayed count over the region's
/// total, 0 while the region has counted less than one first place.
pub fn of_firsts(count: f64, total: f64) -> f64 {
    if total < 1.0 { 0.0 } else { count / total }
}

/// The maximum-share rule on an order of providers whose first has the maximum share `max`
/// (`None`: uncapped): the first swaps places with the second when its share of recent first
/// places (`share`, asked only for a capped first with a second) is above the maximum. Whether
/// it did.
pub fn cap<T>(order: &mut [T], max: Option<f64>, share: impl FnOnce() -> f64) -> bool {
    match max {
        Some(max) if order.len() > 1 && share() > max => {
            order.swap(0, 1);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_over_its_maximum_share_goes_second() {
        let mut order = ["a", "b", "c"];
        assert!(!cap(&mut order, None, || 1.0));
        assert!(!cap(&mut order, Some(0.5), || 0.5));
        assert_eq!(order, ["a", "b", "c"]);
        assert!(cap(&mut order, Some(0.5), || 0.6));
        assert_eq!(order, ["b", "a", "c"]);
        let mut alone = ["a"];
        assert!(!cap(&mut alone, Some(0.0), || 1.0));
    }

    #[test]
    fn no_share_before_a_whole_first_place() {
        assert_eq!(of_firsts(0.0, 0.0), 0.0);
        assert_eq!(of_firsts(0.5, 0.9), 0.0);
        assert_eq!(of_firsts(1.0, 4.0), 0.25);
    }
}
