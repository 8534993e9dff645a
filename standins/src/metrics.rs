//! Reading series out of the Prometheus text format.

/// The sum of every sample of `name` whose labels include all of `labels`
/// (0 when there is none).
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
            all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums_matching_series() {
        let text = "# HELP x y\nriposte_events_parsed_total{source=\"syslog_udp\",dataset=\"panos.threat\"} 3\nriposte_events_parsed_total{source=\"syslog_tcp\",dataset=\"panos.threat\"} 4\n";
        assert_eq!(
            super::value(
                text,
                "riposte_events_parsed_total",
                &[("dataset", "panos.threat")]
            ),
            7.0
        );
        assert_eq!(
            super::value(
                text,
                "riposte_events_parsed_total",
                &[("source", "syslog_udp")]
            ),
            3.0
        );
        assert_eq!(super::value(text, "nope", &[]), 0.0);
    }
}
