//! Throughput of the syslog header splitter, the CEF, LEEF and Suricata EVE
//! parsers and the RFC 6587 framer, on one core. Criterion reports elements
//! (records) per second; the target for the per-record work is ~1M/s.
//!
//! `cargo bench -p riposte-firewall --bench parse_formats`

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use riposte_firewall::syslog::{split_header, Framer};
use riposte_firewall::{cef, eve, leef, ParseOptions, Parsed, RecordContext};

const CSV: &str = "1,2024/06/15 10:21:07,007951000123456,THREAT,spyware,2561,2024/06/15 10:21:06,10.244.1.17,203.0.113.50,192.0.2.10,203.0.113.50,allow egress web,,,web-browsing,vsys1,k8s-pods,untrust,ethernet1/1,ethernet1/2,default,2024/06/15 10:21:07,123456,1,49152,443,31337,443,0x80402000,tcp,reset-both,\"evil.example.com/gate.php\",Zeus C2 Traffic(13209),any,critical,client-to-server,7324351234,0x2000000000000000";

const HEADERS: &[(&str, &str)] = &[
    ("none", ""),
    ("bsd_pri_host", "<14>Jun 15 10:21:07 cn-fw-1.example.com "),
    ("bsd_double_space_tag", "<14>Jun  5 10:21:07 cn-fw-1 panfw[1234]: "),
    ("bsd_host_colon", "<10>May 12 16:30:37 PA-3020A.arista.com  : "),
    ("rfc3339", "2023-07-06T08:11:40+02:00 paloalto.test.host "),
    (
        "rfc5424_sd",
        "<14>1 2021-10-28T02:58:53.586Z stream-logfwd logforwarder 42 panwlogs [meta@1 a=\"x\\]y\" b=\"z\"] \u{feff}",
    ),
];

const CEF_THREAT: &str = concat!(
    "CEF:0|Palo Alto Networks|PAN-OS|10.2.4|spyware|THREAT|10|",
    "rt=Jun 15 2024 10:21:07 GMT deviceExternalId=007951000123456 src=10.244.1.17 dst=203.0.113.50 ",
    "sourceTranslatedAddress=192.0.2.10 destinationTranslatedAddress=203.0.113.50 cs1Label=Rule ",
    "cs1=allow egress web suser=shop\\\\checkout duser= app=web-browsing cs3Label=Virtual System cs3=vsys1 ",
    "cs4Label=Source Zone cs4=k8s-pods cs5Label=Destination Zone cs5=untrust ",
    "deviceInboundInterface=ethernet1/1 deviceOutboundInterface=ethernet1/2 cs6Label=LogProfile cs6=default ",
    "cn1Label=SessionID cn1=123456 cnt=1 spt=49152 dpt=443 sourceTranslatedPort=31337 ",
    "destinationTranslatedPort=443 flexString1Label=Flags flexString1=0x80402000 proto=tcp act=reset-both ",
    "request=\"evil.example.com/gate.php?id\\=42\" cs2Label=URL Category cs2=command-and-control ",
    "flexString2Label=Direction flexString2=client-to-server PanOSActionFlags=0x2000000000000000 ",
    "externalId=7324351234 cat=Zeus C2 Traffic(13209) fileId=0 PanOSDGl1=0 PanOSDGl2=0 PanOSDGl3=0 ",
    "PanOSDGl4=0 PanOSVsysName= dvchost=cn-fw-1 PanOSSrcUUID= PanOSDstUUID= PanOSTunnelID=0 ",
    "PanOSThreatCategory=command-and-control PanOSContentVer=AppThreat-8795-8385 ",
    "PanOSContainerName=3f2a1b9c PanOSPODNamespace=shop PanOSPODName=checkout-7d9f"
);

const CEF_TRAFFIC: &str = concat!(
    "CEF:0|Palo Alto Networks|PAN-OS|11.1.2|end|TRAFFIC|1|rt=Jun 15 2024 12:00:05 ",
    "deviceExternalId=007951000123456 src=10.244.2.8 dst=10.96.0.10 sourceTranslatedAddress=0.0.0.0 ",
    "destinationTranslatedAddress=0.0.0.0 cs1Label=Rule cs1=dns cs4Label=Source Zone cs4=pods ",
    "cs5Label=Destination Zone cs5=svc cn1Label=SessionID cn1=99 cnt=1 spt=53000 dpt=53 ",
    "sourceTranslatedPort=0 destinationTranslatedPort=0 proto=udp act=allow flexNumber1Label=Total bytes ",
    "flexNumber1=180 start=Jun 15 2024 12:00:00 cs2Label=URL Category cs2=any externalId=42 ",
    "reason=aged-out dvchost=cn-fw-1 cat=from-policy"
);

const LEEF_TRAFFIC: &str = "LEEF:1.0|Palo Alto Networks|PAN-OS Syslog Integration|11.1.6-h14|allow|cat=TRAFFIC|ReceiveTime=2025/09/17 13:45:34|SerialNumber=010108010025|Type=TRAFFIC|Subtype=start|devTime=Sep 17 2025 11:45:34 GMT|src=172.19.50.39|dst=172.19.5.50|srcPostNAT=0.0.0.0|dstPostNAT=0.0.0.0|RuleName=interzone-default|usrName=|SourceUser=|DestinationUser=|Application=ssl|VirtualSystem=vsys3|SourceZone=x-def|DestinationZone=z-def|IngressInterface=ethernet1/6|EgressInterface=ethernet1/7|LogForwardingProfile=default|SessionID=74879677|RepeatCount=1|srcPort=62126|dstPort=443|srcPostNATPort=0|dstPostNATPort=0|Flags=0x0|proto=tcp|action=allow|totalBytes=460|dstBytes=70|srcBytes=390|totalPackets=4|StartTime=2025/09/17 13:45:33|ElapsedTime=0|URLCategory=any|sequence=7548503197945820434|ActionFlags=0x8000000000000000|SourceLocation=172.16.0.0-172.31.255.255|DestinationLocation=172.16.0.0-172.31.255.255|dstPackets=1|srcPackets=3|SessionEndReason=n/a|DeviceGroupHierarchyL1=177|DeviceGroupHierarchyL2=235|DeviceGroupHierarchyL3=236|DeviceGroupHierarchyL4=239|vSrcName=firewall.domain.local|DeviceName=firewall.domain.local|ActionSource=from-policy|SrcUUID=|DstUUID=|TunnelID=0|MonitorTag=|ParentSessionID=0|ParentStartTime=|TunnelType=N/A";

const LEEF_THREAT: &str = concat!(
    "LEEF:1.0|Palo Alto Networks|PAN-OS Syslog Integration|10.2.4|Zeus C2 Traffic(13209)|",
    "ReceiveTime=2024/06/15 12:21:07|SerialNumber=007951000123456|cat=THREAT|Subtype=spyware|",
    "devTime=Jun 15 2024 10:21:07 GMT|src=10.244.1.17|dst=203.0.113.50|srcPostNAT=192.0.2.10|",
    "dstPostNAT=203.0.113.50|RuleName=allow egress web|usrName=shop\\checkout|SourceUser=shop\\checkout|",
    "DestinationUser=|Application=web-browsing|VirtualSystem=vsys1|SourceZone=k8s-pods|",
    "DestinationZone=untrust|IngressInterface=ethernet1/1|EgressInterface=ethernet1/2|",
    "LogForwardingProfile=default|SessionID=123456|RepeatCount=1|srcPort=49152|dstPort=443|",
    "srcPostNATPort=31337|dstPostNATPort=443|Flags=0x80402000|proto=tcp|action=reset-both|",
    "Miscellaneous=\"evil.example.com/gate.php?id=42\"|ThreatID=Zeus C2 Traffic(13209)|",
    "URLCategory=command-and-control|sev=5|Severity=critical|Direction=client-to-server|",
    "sequence=7324351234|ActionFlags=0x2000000000000000|SourceLocation=10.0.0.0-10.255.255.255|",
    "DestinationLocation=United States|ContentType=|PCAP_ID=0|FileDigest=|Cloud=|UserAgent=curl/8.5.0|",
    "DeviceName=cn-fw-1|ThreatCategory=command-and-control|ContainerID=3f2a1b9c|",
    "ContainerNameSpace=shop|ContainerName=checkout-7d9f"
);

const EVE_ALERT: &str = r#"{"timestamp":"2022-07-12T06:22:33.415742+0000","flow_id":1398609176796675,"in_iface":"eth0","event_type":"alert","src_ip":"1.2.3.4","src_port":33270,"dest_ip":"10.244.1.17","dest_port":80,"proto":"TCP","tx_id":0,"alert":{"action":"allowed","gid":1,"signature_id":2034125,"rev":4,"signature":"ET EXPLOIT Apache HTTP Server 2.4.49 - Path Traversal Attempt (CVE-2021-41773) M2","category":"Attempted Administrator Privilege Gain","severity":1,"metadata":{"affected_product":["Apache_HTTP_server"],"attack_target":["Web_Server"],"created_at":["2021_10_05"],"cve":["CVE_2021_41773"],"deployment":["Internet","Perimeter"],"former_category":["EXPLOIT"],"performance_impact":["Low"],"signature_severity":["Major"],"updated_at":["2022_04_18"]}},"http":{"hostname":"34.245.178.108","http_port":80,"url":"/cgi-bin/.%2e/.%2e/.%2e/.%2e/bin/sh","http_user_agent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/78.0.3904.108 Safari/537.36","http_content_type":"text/html","http_method":"POST","protocol":"HTTP/1.1","status":400,"length":166},"files":[{"filename":"/bin/sh","sid":[],"gaps":false,"state":"CLOSED","stored":false,"size":33,"tx_id":0}],"app_proto":"http","flow":{"pkts_toserver":4,"pkts_toclient":4,"bytes_toserver":480,"bytes_toclient":627,"start":"2022-07-12T06:22:33.377434+0000"}}"#;

const EVE_FLOW: &str = r#"{"timestamp":"2022-07-11T05:52:18.378379+0000","flow_id":1258832998001901,"in_iface":"bond0","event_type":"flow","src_ip":"1.2.3.4","src_port":52812,"dest_ip":"127.0.0.1","dest_port":80,"proto":"TCP","flow":{"pkts_toserver":6,"pkts_toclient":4,"bytes_toserver":1034,"bytes_toclient":468,"start":"2022-07-11T05:51:17.264386+0000","end":"2022-07-11T05:51:18.378379+0000","age":1,"state":"closed","reason":"timeout","alerted":true},"tcp":{"tcp_flags":"1b","tcp_flags_ts":"1b","tcp_flags_tc":"1b","syn":true,"fin":true,"psh":true,"ack":true,"state":"closed"}}"#;

fn headers(c: &mut Criterion) {
    let mut group = c.benchmark_group("split_header");
    group.throughput(Throughput::Elements(1));
    for (name, header) in HEADERS {
        let line = format!("{header}{CSV}");
        group.bench_with_input(BenchmarkId::from_parameter(name), &line, |b, line| {
            b.iter(|| {
                let (h, payload) = split_header(black_box(line)).expect("valid header");
                black_box((h.hostname, payload.len()))
            })
        });
    }
    group.finish();
}

fn parsers(c: &mut Criterion) {
    type ParseFn =
        fn(&str, &RecordContext<'_>, &ParseOptions) -> Result<Parsed, riposte_firewall::ParseError>;
    let opts = ParseOptions::default();
    let cases: [(&str, ParseFn, &str); 6] = [
        ("cef_threat", cef::parse, CEF_THREAT),
        ("cef_traffic", cef::parse, CEF_TRAFFIC),
        ("leef_threat", leef::parse, LEEF_THREAT),
        ("leef_traffic", leef::parse, LEEF_TRAFFIC),
        ("eve_alert", eve::parse, EVE_ALERT),
        ("eve_flow_ignored", eve::parse, EVE_FLOW),
    ];
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(1));
    for (name, parse, line) in cases {
        let ctx = RecordContext {
            original: line,
            hostname: Some("cn-fw-1"),
            header_time: None,
        };
        assert!(
            parse(line, &ctx, &opts).is_ok(),
            "{name} fixture must parse"
        );
        group.bench_function(name, |b| {
            b.iter(|| black_box(parse(black_box(line), &ctx, &opts)))
        });
    }
    group.finish();
}

/// About 10 MB of PAN-OS-sized records, every fourth octet-counted, the
/// rest LF- or CRLF-terminated.
fn stream() -> (Vec<u8>, u64) {
    let mut out = Vec::with_capacity(10 << 20);
    let mut records = 0u64;
    while out.len() < 10 << 20 {
        let line = format!("<14>Jun 15 10:21:07 cn-fw-1 {CSV},{records}");
        match records % 4 {
            0 => out.extend_from_slice(format!("{} {line}", line.len()).as_bytes()),
            1 => {
                out.extend_from_slice(line.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            _ => {
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
        }
        records += 1;
    }
    (out, records)
}

fn framing(c: &mut Criterion) {
    let (input, records) = stream();
    let mut check = BytesMut::from(&input[..]);
    let mut framer = Framer::new(64 * 1024);
    let mut decoded = 0u64;
    while let Ok(Some(_)) = framer.decode(&mut check) {
        decoded += 1;
    }
    assert_eq!(decoded, records, "the stream must decode into every record");
    let mut group = c.benchmark_group("framer_10mb");
    group.throughput(Throughput::Elements(records));
    group.sample_size(20);
    for chunk in [1460usize, 65536] {
        group.bench_with_input(BenchmarkId::new("chunk", chunk), &chunk, |b, &chunk| {
            b.iter(|| {
                let mut framer = Framer::new(64 * 1024);
                let mut buf = BytesMut::with_capacity(128 * 1024);
                let mut n = 0u64;
                for piece in input.chunks(chunk) {
                    buf.extend_from_slice(piece);
                    while let Ok(Some(frame)) = framer.decode(&mut buf) {
                        n += frame.len() as u64 & 1;
                    }
                }
                black_box(n)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, headers, parsers, framing);
criterion_main!(benches);
