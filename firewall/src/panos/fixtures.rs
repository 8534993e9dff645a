//! Test lines written from the published field orders: a realistic CN-Series
//! line per log type whose columns tests override one by one, cut to the
//! width of any PAN-OS release.

/// A line under construction: one string per column.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    cols: Vec<String>,
}

impl Line {
    /// Sets column `i` (raw: quote it yourself when the value needs it).
    pub(crate) fn set(mut self, i: usize, value: &str) -> Line {
        if i >= self.cols.len() {
            self.cols.resize(i + 1, String::new());
        }
        self.cols[i] = value.to_owned();
        self
    }

    pub(crate) fn build(&self) -> String {
        self.cols.join(",")
    }
}

fn line(defaults: &[(usize, &str)], width: usize) -> Line {
    let mut cols = vec![String::new(); width];
    for (i, v) in defaults {
        if *i < width {
            cols[*i] = (*v).to_owned();
        }
    }
    Line { cols }
}

/// The sessions's columns, common to THREAT and TRAFFIC (indexes 0–30).
const SESSION: &[(usize, &str)] = &[
    (0, "1"),
    (1, "2024/08/19 13:58:33"),
    (2, "007954000123456"),
    (5, "2816"),
    (6, "2024/08/19 13:58:32"),
    (7, "10.244.1.17"),
    (8, "203.0.113.66"),
    (9, "198.51.100.7"),
    (10, "203.0.113.66"),
    (11, "pods-to-internet"),
    (12, r"corp\svc-checkout"),
    (14, "ssl"),
    (15, "vsys1"),
    (16, "pods"),
    (17, "internet"),
    (18, "ethernet1/1"),
    (19, "ethernet1/2"),
    (20, "forward-to-riposte"),
    (21, "2024/08/19 13:58:32"),
    (22, "887766"),
    (23, "1"),
    (24, "51234"),
    (25, "443"),
    (26, "40001"),
    (27, "443"),
    (28, "0x402000"),
    (29, "tcp"),
];

/// A PAN-OS 11.1 THREAT line (spyware, C2) cut or padded to `width` columns.
pub(crate) fn threat_line(width: usize) -> Line {
    let mut l = line(SESSION, width);
    let threat: &[(usize, &str)] = &[
        (3, "THREAT"),
        (4, "spyware"),
        (30, "reset-both"),
        (31, "\"\""),
        (32, "Cobalt Strike.Gen Command and Control Traffic(86237)"),
        (33, "any"),
        (34, "critical"),
        (35, "client-to-server"),
        (36, "7331912355678901234"),
        (37, "0x8000000000000000"),
        (38, "10.0.0.0-10.255.255.255"),
        (39, "United States"),
        (40, "0"),
        (42, "0"),
        (45, "0"),
        (54, "12"),
        (55, "0"),
        (56, "0"),
        (57, "0"),
        (59, "cn-ngfw-1"),
        (66, "0"),
        (68, "N/A"),
        (69, "command-and-control"),
        (70, "AppThreat-8870-8843"),
        (71, "0x0"),
        (72, "0"),
        (73, "4294967295"),
        (76, "9b0e2d71-8c1f-4a8e-a3f5-2f6c0d1e7b44"),
        (77, "0"),
        (96, "containerd://4f2a9c"),
        (97, "shop"),
        (98, "checkout-7d9f"),
        (106, "0"),
        (107, "2024-08-19T13:58:32.880+00:00"),
        (111, "encrypted-tunnel"),
        (112, "networking"),
        (113, "browser-based"),
        (114, "4"),
        (
            115,
            "\"used-by-malware,able-to-transfer-file,tunnel-other-application\"",
        ),
        (117, "ssl"),
        (118, "no"),
        (119, "no"),
        (122, "NonProxyTraffic"),
    ];
    for (i, v) in threat {
        if *i < width {
            l = l.set(*i, v);
        }
    }
    l
}

/// A PAN-OS 11.x TRAFFIC end line cut or padded to `width` columns.
pub(crate) fn traffic_line(width: usize) -> Line {
    let mut l = line(SESSION, width);
    let traffic: &[(usize, &str)] = &[
        (3, "TRAFFIC"),
        (4, "end"),
        (30, "allow"),
        (31, "19421"),
        (32, "2151"),
        (33, "17270"),
        (34, "39"),
        (35, "2024/08/19 13:57:10"),
        (36, "82"),
        (37, "search-engines"),
        (38, "0"),
        (39, "2176523185"),
        (40, "0x8000000000000000"),
        (41, "10.0.0.0-10.255.255.255"),
        (42, "United States"),
        (44, "18"),
        (45, "21"),
        (46, "tcp-fin"),
        (47, "12"),
        (48, "0"),
        (49, "0"),
        (50, "0"),
        (52, "cn-ngfw-1"),
        (53, "from-policy"),
        (58, "0"),
        (60, "N/A"),
        (65, "9b0e2d71-8c1f-4a8e-a3f5-2f6c0d1e7b44"),
        (66, "0"),
        (92, "containerd://4f2a9c"),
        (93, "shop"),
        (94, "checkout-7d9f"),
        (102, "2024-08-19T13:58:32.880+00:00"),
        (105, "internet-utility"),
        (110, "untunneled"),
        (111, "no"),
        (112, "no"),
    ];
    for (i, v) in traffic {
        if *i < width {
            l = l.set(*i, v);
        }
    }
    l
}
