//! Whatever arrives on the syslog port, the PAN-OS parser answers with an
//! event or an error, never a panic: arbitrary text, and real-looking lines
//! damaged the ways transport and devices damage them.

use proptest::prelude::*;
use riposte_firewall::{panos, parse_record, ParseOptions, Parsed, RecordContext};

const THREAT: &str = "1,2024/08/19 13:58:33,007954000123456,THREAT,spyware,2816,2024/08/19 13:58:32,10.244.1.17,203.0.113.66,198.51.100.7,203.0.113.66,pods-to-internet,corp\\svc,,ssl,vsys1,pods,internet,ethernet1/1,ethernet1/2,fwd,2024/08/19 13:58:32,887766,1,51234,443,40001,443,0x402000,tcp,reset-both,\"evil.example/a,b\",Cobalt Strike.Gen Command and Control Traffic(86237),any,critical,client-to-server,7331912355678901234,0x8000000000000000,10.0.0.0-10.255.255.255,United States,0,,0,,,0,\"Mozilla/5.0 (X11, \"\"x\"\")\",,,,\"From: \"\"A\"\" <a@b.c>\",\"Sub: Hi, there\",,,12,0,0,0,,cn-ngfw-1,,,,,0,,0,,N/A,command-and-control,AppThreat-8870-8843,0x0,0,4294967295,,\"a,b\",9b0e2d71-8c1f-4a8e-a3f5-2f6c0d1e7b44,0,,,,,,,,,,,,,,,,,,,containerd://4f2a9c,shop,checkout-7d9f,,,,,,,,0,2024-08-19T13:58:32.880+00:00,,,,encrypted-tunnel,networking,browser-based,4,\"used-by-malware,tunnel-other-application\",,ssl,no,no,,,NonProxyTraffic";
const TRAFFIC: &str = "1,2018/12/5 13:15:16,0009C101677,TRAFFIC,start,1,2018/12/5 16:50:16,172.22.243.135,172.22.28.33,0.0.0.0,0.0.0.0,Dev_Backup_flow_4m,,,ping,vsys1,untrust,trust,ethernet1/1,ethernet1/2,Dev_DirectFlow_Assist,2018/12/5 16:50:16,198442,59,0,0,0,0,0x0,icmp,allow,6018,6018,0,59,2018/12/5 16:50:10,0,any,0,1549277,0x0,172.16.0.0-172.31.255.255,172.16.0.0-172.31.255.255,0,59,0 ";
const PRISMA: &str = "2021-11-01T15:14:06.000000Z,no-serial,THREAT,spyware,10.0,2021-11-01T15:13:56.000000Z,192.0.2.20,8.8.8.8,192.0.2.111,8.8.8.8,in-to-out-dns,domain\\user,,dns,vsys1,ZoneA,ZoneB,tunnel.101,ethernet1/1,Fwd,1355037,1,55517,53,45783,53,udp,drop,example.com,Phishing:example.com(109010001),Low,client-to-server,12088427,10.0.0.0-10.255.255.255,US,1152921504606899096,,,0,,,,,0,28,31,0,0,,Big-Firewall,,,0,,0,1970-01-01T00:00:00.000000Z,N/A,dns-phishing,0,0x0,ceb0229f-7a4a-5c62-8960-f66b27e2e01e,0,,,,2021-11-01T15:13:57.399000Z,";

fn parse_payload(payload: &str) {
    let ctx = RecordContext {
        original: payload,
        hostname: Some("fw"),
        header_time: None,
    };
    for tz in [chrono_tz::Tz::UTC, chrono_tz::Tz::Europe__Berlin] {
        let opts = ParseOptions {
            timezone: tz,
            ..ParseOptions::default()
        };
        if let Ok(Parsed::Event(ev)) = panos::parse(payload, &ctx, &opts) {
            // Missing values are absent, never empty strings.
            for s in [
                &ev.threat_name,
                &ev.source_zone,
                &ev.rule_name,
                &ev.source_user,
                &ev.action,
            ] {
                assert!(s.as_deref().is_none_or(|v| !v.is_empty()));
            }
            for s in [
                &ev.url_original,
                &ev.file_name,
                &ev.user_agent,
                &ev.email_from,
            ] {
                assert!(s.as_deref().is_none_or(|v| !v.is_empty()));
            }
        }
    }
    let _ = panos::looks_like_csv(payload);
    let _ = parse_record(payload.as_bytes(), &ParseOptions::default());
}

#[derive(Debug, Clone)]
enum Mutation {
    Drop(usize),
    Duplicate(usize),
    Quote(usize),
    Replace(usize, String),
    Truncate(usize),
    InsertQuote(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0..140usize).prop_map(Mutation::Drop),
        (0..140usize).prop_map(Mutation::Duplicate),
        (0..140usize).prop_map(Mutation::Quote),
        (0..140usize, ".{0,12}").prop_map(|(i, s)| Mutation::Replace(i, s)),
        (0..2000usize).prop_map(Mutation::Truncate),
        (0..2000usize).prop_map(Mutation::InsertQuote),
    ]
}

fn mutate(line: &str, mutations: &[Mutation]) -> String {
    let mut cols: Vec<String> = line.split(',').map(str::to_owned).collect();
    let mut tail: Option<usize> = None;
    let mut quote_at: Vec<usize> = Vec::new();
    for m in mutations {
        let n = cols.len().max(1);
        match m {
            Mutation::Drop(i) if cols.len() > 1 => {
                cols.remove(i % n);
            }
            Mutation::Drop(_) => {}
            Mutation::Duplicate(i) => {
                let c = cols.get(i % n).cloned().unwrap_or_default();
                cols.insert(i % n, c);
            }
            Mutation::Quote(i) => {
                if let Some(c) = cols.get_mut(i % n) {
                    *c = format!("\"{}\"", c.replace('"', "\"\""));
                }
            }
            Mutation::Replace(i, s) => {
                if let Some(c) = cols.get_mut(i % n) {
                    c.clone_from(s);
                }
            }
            Mutation::Truncate(at) => tail = Some(*at),
            Mutation::InsertQuote(at) => quote_at.push(*at),
        }
    }
    let mut out = cols.join(",");
    for at in quote_at {
        let mut at = at % (out.len() + 1);
        while !out.is_char_boundary(at) {
            at -= 1;
        }
        out.insert(at, '"');
    }
    if let Some(at) = tail {
        let mut at = at.min(out.len());
        while !out.is_char_boundary(at) {
            at -= 1;
        }
        out.truncate(at);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(s in ".{0,600}") {
        parse_payload(&s);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..800)) {
        let _ = parse_record(&b, &ParseOptions::default());
    }

    #[test]
    fn csv_shaped_text_never_panics(cols in proptest::collection::vec("[0-9A-Za-z/:. \"()-]{0,12}", 0..140)) {
        let mut line = String::from("1,2024/08/19 13:58:33,0123,THREAT,");
        line.push_str(&cols.join(","));
        parse_payload(&line);
        let mut line = String::from("2021-11-01T15:14:06.000000Z,no-serial,TRAFFIC,");
        line.push_str(&cols.join(","));
        parse_payload(&line);
    }

    #[test]
    fn mutated_real_lines_never_panic(
        which in 0..3usize,
        mutations in proptest::collection::vec(mutation(), 0..8),
    ) {
        let base = [THREAT, TRAFFIC, PRISMA][which];
        let line = mutate(base, &mutations);
        parse_payload(&line);
        parse_payload(&format!("<14>Aug 19 13:58:33 cn-ngfw-1 {line}"));
    }

    #[test]
    fn any_timestamp_text_never_panics(
        y in 0u32..10000, mo in 0u32..20, d in 0u32..40, h in 0u32..30, mi in 0u32..70, s in 0u32..70,
        tz in proptest::sample::select(vec![chrono_tz::Tz::UTC, chrono_tz::Tz::Europe__Berlin, chrono_tz::Tz::America__New_York, chrono_tz::Tz::Australia__Lord_Howe]),
    ) {
        let t = format!("{y:04}/{mo}/{d} {h}:{mi:02}:{s:02}");
        let line = THREAT.replacen("2024/08/19 13:58:32", &t, 1).replacen("2024-08-19T13:58:32.880+00:00", "", 1);
        let ctx = RecordContext { original: &line, hostname: None, header_time: None };
        let opts = ParseOptions { timezone: tz, ..ParseOptions::default() };
        let _ = panos::parse(&line, &ctx, &opts);
    }
}

#[test]
fn the_base_lines_are_valid() {
    for line in [THREAT, TRAFFIC, PRISMA] {
        let ctx = RecordContext::bare(line);
        let parsed = panos::parse(line, &ctx, &ParseOptions::default());
        assert!(matches!(parsed, Ok(Parsed::Event(_))), "{parsed:?}");
    }
}
