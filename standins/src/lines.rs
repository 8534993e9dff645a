//! PAN-OS log lines written for the tests, from the field reference (column
//! positions of PAN-OS 11.1).

/// A PAN-OS 11.1 THREAT line: `subtype` (e.g. `spyware`), threat `name(id)`,
/// `category` (the Threat Category column), `severity`, `action`, from
/// `src` to `dst`, `seq` as the sequence number so lines differ.
#[allow(clippy::too_many_arguments)]
pub fn threat(
    subtype: &str,
    threat: &str,
    category: &str,
    severity: &str,
    action: &str,
    src: &str,
    dst: &str,
    seq: u64,
) -> String {
    let mut c: Vec<String> = vec![String::new(); 123];
    let now = "2026/11/27 10:15:30";
    let set = |c: &mut Vec<String>, i: usize, v: &str| c[i] = v.to_string();
    set(&mut c, 0, "1");
    set(&mut c, 1, now);
    set(&mut c, 2, "007051000123456");
    set(&mut c, 3, "THREAT");
    set(&mut c, 4, subtype);
    set(&mut c, 5, "2561");
    set(&mut c, 6, now);
    set(&mut c, 7, src);
    set(&mut c, 8, dst);
    set(&mut c, 9, "0.0.0.0");
    set(&mut c, 10, "0.0.0.0");
    set(&mut c, 11, "pods-egress");
    set(&mut c, 14, "web-browsing");
    set(&mut c, 15, "vsys1");
    set(&mut c, 16, "pods");
    set(&mut c, 17, "internet");
    set(&mut c, 18, "ethernet1/1");
    set(&mut c, 19, "ethernet1/2");
    set(&mut c, 20, "to-riposte");
    set(&mut c, 21, now);
    set(&mut c, 22, &(40_000 + seq).to_string());
    set(&mut c, 23, "1");
    set(&mut c, 24, "51514");
    set(&mut c, 25, "443");
    set(&mut c, 26, "0");
    set(&mut c, 27, "0");
    set(&mut c, 28, "0x402000");
    set(&mut c, 29, "tcp");
    set(&mut c, 30, action);
    set(&mut c, 31, "\"\"");
    set(&mut c, 32, threat);
    set(&mut c, 33, "any");
    set(&mut c, 34, severity);
    set(&mut c, 35, "client-to-server");
    set(&mut c, 36, &(7_300_000_000_000_000_000 + seq).to_string());
    set(&mut c, 37, "0x8000000000000000");
    set(&mut c, 38, "10.0.0.0-10.255.255.255");
    set(&mut c, 39, "United States");
    set(&mut c, 59, "cn-fw-1");
    set(&mut c, 69, category);
    set(&mut c, 70, "AppThreat-8800-8000");
    set(&mut c, 76, "7f1c8d2e-2a6b-4c1d-9e0f-1a2b3c4d5e6f");
    set(&mut c, 107, "2026-11-27T10:15:30.123+00:00");
    set(&mut c, 122, "NonProxyTraffic");
    c.join(",")
}

/// A critical command-and-control THREAT line from pod `src` to `c2`.
pub fn c2(src: &str, c2: &str, seq: u64) -> String {
    threat(
        "spyware",
        "Cobalt Strike Beacon Command and Control Traffic(86243)",
        "command-and-control",
        "critical",
        "reset-both",
        src,
        c2,
        seq,
    )
}

/// The same line behind a BSD syslog header, as CN-Series sends it.
pub fn with_bsd_header(line: &str) -> String {
    format!("<14>Nov 27 10:15:30 cn-fw-1 {line}")
}
