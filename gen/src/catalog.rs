//! What the generated logs talk about: App-IDs, threat signatures, URL
//! categories and sites, countries, zones and rules.
//!
//! Names follow the vendor's naming style and the real lines collected in
//! `shared/samples/panos/`; a few are taken from those lines, the others are
//! plausible inventions. The ids are in the ranges the vendor uses per kind
//! (9999 for URL filtering, 8000s for zone protection, 52000s for file
//! types, 9-digit antivirus ids) but are not a copy of any content release.

/// One App-ID with the application columns a 10.x/11.x line carries.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct App {
    pub name: &'static str,
    pub proto: &'static str,
    pub subcategory: &'static str,
    pub category: &'static str,
    pub technology: &'static str,
    pub risk: &'static str,
    /// Comma-separated; written quoted when it holds more than one item.
    pub characteristics: &'static str,
    pub container: &'static str,
    pub tunneled: &'static str,
    pub saas: &'static str,
}

const CHAR_TUNNEL: &str =
    "used-by-malware,able-to-transfer-file,has-known-vulnerability,tunnel-other-application,pervasive-use";

macro_rules! app {
    ($name:expr, $proto:expr, $sub:expr, $cat:expr, $tech:expr, $risk:expr, $chars:expr, $cont:expr, $tun:expr, $saas:expr) => {
        App {
            name: $name,
            proto: $proto,
            subcategory: $sub,
            category: $cat,
            technology: $tech,
            risk: $risk,
            characteristics: $chars,
            container: $cont,
            tunneled: $tun,
            saas: $saas,
        }
    };
}

pub(crate) const SSL: App = app!(
    "ssl",
    "tcp",
    "encrypted-tunnel",
    "networking",
    "browser-based",
    "4",
    CHAR_TUNNEL,
    "",
    "ssl",
    "no"
);
pub(crate) const WEB_BROWSING: App = app!(
    "web-browsing",
    "tcp",
    "internet-utility",
    "general-internet",
    "browser-based",
    "4",
    CHAR_TUNNEL,
    "",
    "web-browsing",
    "no"
);
pub(crate) const DNS: App = app!(
    "dns-base",
    "udp",
    "infrastructure",
    "networking",
    "network-protocol",
    "3",
    "used-by-malware,has-known-vulnerability,pervasive-use",
    "dns",
    "dns-base",
    "no"
);
pub(crate) const PING: App = app!(
    "ping",
    "icmp",
    "internet-utility",
    "general-internet",
    "network-protocol",
    "2",
    "has-known-vulnerability,tunnel-other-application,pervasive-use",
    "",
    "untunneled",
    "no"
);
pub(crate) const INCOMPLETE: App = app!(
    "incomplete",
    "tcp",
    "unknown",
    "unknown",
    "unknown",
    "1",
    "",
    "",
    "incomplete",
    "no"
);
pub(crate) const INSUFFICIENT: App = app!(
    "insufficient-data",
    "tcp",
    "unknown",
    "unknown",
    "unknown",
    "1",
    "",
    "",
    "insufficient-data",
    "no"
);
pub(crate) const NOT_APPLICABLE: App = app!(
    "not-applicable",
    "tcp",
    "unknown",
    "unknown",
    "unknown",
    "1",
    "",
    "",
    "not-applicable",
    "no"
);
pub(crate) const SSH: App = app!(
    "ssh",
    "tcp",
    "encrypted-tunnel",
    "networking",
    "client-server",
    "4",
    CHAR_TUNNEL,
    "",
    "ssh",
    "no"
);
pub(crate) const POSTGRES: App = app!(
    "postgres",
    "tcp",
    "database",
    "business-systems",
    "client-server",
    "2",
    "able-to-transfer-file,has-known-vulnerability",
    "",
    "postgres",
    "no"
);
pub(crate) const MYSQL: App = app!(
    "mysql",
    "tcp",
    "database",
    "business-systems",
    "client-server",
    "4",
    "able-to-transfer-file,has-known-vulnerability,used-by-malware",
    "",
    "mysql",
    "no"
);
pub(crate) const REDIS: App = app!(
    "redis",
    "tcp",
    "database",
    "business-systems",
    "client-server",
    "2",
    "has-known-vulnerability",
    "",
    "redis",
    "no"
);
pub(crate) const NTP: App = app!(
    "ntp-base",
    "udp",
    "infrastructure",
    "networking",
    "client-server",
    "2",
    "has-known-vulnerability,pervasive-use",
    "ntp",
    "ntp-base",
    "no"
);
pub(crate) const GITHUB: App = app!(
    "github-base",
    "tcp",
    "internet-utility",
    "general-internet",
    "browser-based",
    "2",
    "able-to-transfer-file,has-known-vulnerability,pervasive-use,is-saas",
    "github",
    "github-base",
    "yes"
);
pub(crate) const GOOGLE: App = app!("google-base", "tcp", "internet-utility", "general-internet", "browser-based", "4", "able-to-transfer-file,has-known-vulnerability,tunnel-other-application,used-by-malware,pervasive-use", "", "google-base", "no");
pub(crate) const SLACK: App = app!(
    "slack-base",
    "tcp",
    "instant-messaging",
    "collaboration",
    "browser-based",
    "2",
    "able-to-transfer-file,has-known-vulnerability,pervasive-use,is-saas",
    "slack",
    "slack-base",
    "yes"
);
pub(crate) const SMTP: App = app!(
    "smtp-base",
    "tcp",
    "email",
    "collaboration",
    "client-server",
    "5",
    "used-by-malware,evasive,able-to-transfer-file,has-known-vulnerability,pervasive-use",
    "smtp",
    "smtp-base",
    "no"
);
pub(crate) const MSRPC: App = app!(
    "msrpc-base",
    "tcp",
    "infrastructure",
    "networking",
    "client-server",
    "3",
    "used-by-malware,has-known-vulnerability,pervasive-use",
    "",
    "msrpc-base",
    "no"
);
pub(crate) const UNKNOWN_TCP: App = app!(
    "unknown-tcp",
    "tcp",
    "unknown",
    "unknown",
    "unknown",
    "1",
    "",
    "",
    "unknown-tcp",
    "no"
);
pub(crate) const FTP: App = app!("ftp", "tcp", "file-sharing", "general-internet", "client-server", "5", "used-by-malware,evasive,able-to-transfer-file,has-known-vulnerability,tunnel-other-application,pervasive-use", "", "ftp", "no");
pub(crate) const BITTORRENT: App = app!("bittorrent", "tcp", "file-sharing", "general-internet", "peer-to-peer", "5", "used-by-malware,evasive,excessive-bandwidth-use,able-to-transfer-file,has-known-vulnerability,tunnel-other-application,pervasive-use", "", "bittorrent", "no");

/// A country for `Source Location` / `Destination Location`, and the first
/// octets of addresses that plausibly live there.
#[derive(Debug)]
pub(crate) struct Country {
    pub name: &'static str,
    pub prefixes: &'static [[u8; 2]],
}

pub(crate) const COUNTRIES: &[Country] = &[
    Country {
        name: "United States",
        prefixes: &[
            [34, 120],
            [35, 186],
            [52, 84],
            [54, 239],
            [104, 16],
            [142, 250],
            [151, 101],
            [172, 217],
            [13, 107],
            [20, 42],
        ],
    },
    Country {
        name: "Germany",
        prefixes: &[[46, 4], [88, 198], [78, 46], [185, 220], [5, 9]],
    },
    Country {
        name: "Netherlands",
        prefixes: &[[185, 199], [5, 255], [91, 108], [45, 137]],
    },
    Country {
        name: "France",
        prefixes: &[[51, 15], [37, 187], [163, 172]],
    },
    Country {
        name: "United Kingdom",
        prefixes: &[[81, 2], [86, 1], [212, 58]],
    },
    Country {
        name: "Russian Federation",
        prefixes: &[[77, 88], [95, 163], [5, 188], [91, 240]],
    },
    Country {
        name: "China",
        prefixes: &[[119, 28], [121, 40], [47, 92], [222, 186]],
    },
    Country {
        name: "Singapore",
        prefixes: &[[103, 21], [43, 128], [128, 199]],
    },
    Country {
        name: "Brazil",
        prefixes: &[[200, 147], [177, 54], [191, 252]],
    },
    Country {
        name: "Japan",
        prefixes: &[[133, 242], [210, 140], [153, 127]],
    },
    Country {
        name: "Iran, Islamic Republic of",
        prefixes: &[[5, 160], [91, 98]],
    },
];

/// `Source/Destination Location` of a private address.
pub(crate) const PRIVATE_10: &str = "10.0.0.0-10.255.255.255";

/// A URL category and sites in it, for url threat lines and traffic.
#[derive(Debug)]
pub(crate) struct UrlCategory {
    pub name: &'static str,
    /// `URL Category List` (quoted when it holds a comma).
    pub list: &'static str,
    /// Blocked categories produce `block-url`, the others mostly `alert`.
    pub blocked: bool,
    pub weight: u32,
    /// `host/path` without scheme, as PAN-OS writes the URL column.
    pub urls: &'static [&'static str],
}

pub(crate) const URL_CATEGORIES: &[UrlCategory] = &[
    UrlCategory { name: "computer-and-internet-info", list: "computer-and-internet-info,low-risk", blocked: false, weight: 30, urls: &[
        "api.github.com/repos/kubernetes/kubernetes/releases/latest",
        "registry.npmjs.org/express/-/express-4.19.2.tgz",
        "pypi.org/simple/requests/",
        "files.pythonhosted.org/packages/py3/r/requests/requests-2.32.3-py3-none-any.whl",
        "repo.maven.apache.org/maven2/org/springframework/spring-core/6.1.6/spring-core-6.1.6.pom",
        "proxy.golang.org/github.com/prometheus/client_golang/@v/v1.19.1.mod",
        "dl-cdn.alpinelinux.org/alpine/v3.19/main/x86_64/APKINDEX.tar.gz",
        "deb.debian.org/debian/dists/bookworm/InRelease",
    ] },
    UrlCategory { name: "content-delivery-networks", list: "content-delivery-networks,low-risk", blocked: false, weight: 20, urls: &[
        "cdn.jsdelivr.net/npm/bootstrap@5.3.3/dist/css/bootstrap.min.css",
        "fonts.gstatic.com/s/roboto/v30/KFOmCnqEu92Fr1Mu4mxK.woff2",
        "d1xk2m3n4o5p6q.cloudfront.net/assets/app.3f9c2b.js",
        "ajax.googleapis.com/ajax/libs/jquery/3.7.1/jquery.min.js",
    ] },
    UrlCategory { name: "business-and-economy", list: "business-and-economy,low-risk", blocked: false, weight: 10, urls: &[
        "api.stripe.com/v1/payment_intents",
        "api.paypal.com/v2/checkout/orders",
        "hooks.slack.com/services/T0000/B0000/XXXXXXXX",
    ] },
    UrlCategory { name: "search-engines", list: "search-engines,low-risk", blocked: false, weight: 8, urls: &[
        "www.google.com/search?q=kubectl+rollout+restart",
        "www.bing.com/search?q=postgres+connection+pool",
    ] },
    UrlCategory { name: "online-storage-and-backup", list: "online-storage-and-backup,low-risk", blocked: false, weight: 8, urls: &[
        "s3.eu-west-1.amazonaws.com/shop-backups/db/2024-05-01.sql.gz",
        "storage.googleapis.com/batch-reports/daily/report.csv",
    ] },
    UrlCategory { name: "web-advertisements", list: "web-advertisements,low-risk", blocked: false, weight: 5, urls: &[
        "securepubads.g.doubleclick.net/gampad/ads?iu=/1234/shop&sz=300x250",
        "dt.adsafeprotected.com/",
    ] },
    UrlCategory { name: "social-networking", list: "social-networking,low-risk", blocked: false, weight: 4, urls: &[
        "graph.facebook.com/v19.0/me",
        "t.co/",
    ] },
    UrlCategory { name: "newly-registered-domain", list: "newly-registered-domain,medium-risk", blocked: false, weight: 2, urls: &[
        "cdn-update-check.top/v2/ping",
        "shop-promo-2024.click/landing",
    ] },
    UrlCategory { name: "malware", list: "malware,high-risk", blocked: true, weight: 1, urls: &[
        "dl.xmrig-pool.xyz/xmrig-6.21.0-linux-static-x64.tar.gz",
        "update-kworker.ru/bin/x86_64",
    ] },
    UrlCategory { name: "phishing", list: "phishing,high-risk", blocked: true, weight: 1, urls: &[
        "login-microsoftonline.com-verify.info/common/oauth2/authorize",
        "secure-paypal-account.support/signin",
    ] },
    UrlCategory { name: "command-and-control", list: "command-and-control,high-risk", blocked: true, weight: 1, urls: &[
        "cdn-static-assets.duckdns.org/jquery-3.3.1.min.js",
        "api-telemetry.onthewifi.com/submit.php",
    ] },
];

/// User agents seen on url lines. Several carry commas, so the column gets
/// quoted as PAN-OS does.
pub(crate) const USER_AGENTS: &[&str] = &[
    "Go-http-client/1.1",
    "python-requests/2.31.0",
    "curl/8.5.0",
    "okhttp/4.12.0",
    "Apache-HttpClient/4.5.14 (Java/17.0.10)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "kube-probe/1.29",
    "Prometheus/2.51.2",
];

/// A threat signature: `Name(id)`, the Threat Category column and severity.
#[derive(Debug)]
pub(crate) struct Signature {
    pub name: &'static str,
    pub id: u64,
    pub category: &'static str,
    pub severity: &'static str,
}

macro_rules! sig {
    ($name:expr, $id:expr, $cat:expr, $sev:expr) => {
        Signature {
            name: $name,
            id: $id,
            category: $cat,
            severity: $sev,
        }
    };
}

/// Command-and-control signatures: one per C2 server family.
pub(crate) const C2_SIGS: &[Signature] = &[
    sig!(
        "PoisonIvy.RAT Command and Control Traffic",
        13172,
        "command-and-control",
        "critical"
    ),
    sig!(
        "Cobalt Strike Beacon Command and Control Traffic Detection",
        86446,
        "command-and-control",
        "critical"
    ),
    sig!(
        "Sliver Command and Control Traffic Detection",
        86823,
        "command-and-control",
        "critical"
    ),
    sig!(
        "Emotet Command and Control Traffic Detection",
        85504,
        "command-and-control",
        "critical"
    ),
    sig!(
        "QakBot Command and Control Traffic Detection",
        86103,
        "command-and-control",
        "critical"
    ),
    sig!(
        "Metasploit Meterpreter Reverse HTTPS Command and Control Traffic Detection",
        86187,
        "command-and-control",
        "critical"
    ),
    sig!(
        "Mirai Botnet Command and Control Traffic Detection",
        85862,
        "command-and-control",
        "critical"
    ),
    sig!(
        "Havoc Framework Command and Control Traffic Detection",
        87021,
        "command-and-control",
        "critical"
    ),
];

/// Spyware that is not C2 traffic (the C2 share is the only source of
/// `command-and-control`, so that share can be measured on the output).
pub(crate) const SPYWARE_SIGS: &[Signature] = &[
    sig!(
        "XMRig Cryptocurrency Mining Pool Connection Attempt",
        85497,
        "cryptominer",
        "high"
    ),
    sig!("Suspicious User-Agent Strings", 13351, "spyware", "low"),
    sig!(
        "Generic Adware Ad Traffic Detection",
        13504,
        "adware",
        "low"
    ),
    sig!(
        "Linux.Gafgyt Keylogger Data Exfiltration Traffic",
        86377,
        "keylogger",
        "high"
    ),
    sig!("Suspicious TLS Evasion Found", 14978, "spyware", "medium"),
];

/// Domains for `Suspicious DNS Query (generic:<domain>)` lines (category
/// `dns`), with the signature id of each.
pub(crate) const DNS_SUSPICIOUS: &[(&str, u64)] = &[
    ("hashimshafiq.no-ip.biz", 4100111),
    ("comparetvs.net", 320511141),
    ("mine.moneropool.xyz", 109012377),
    ("update-kworker.ru", 109013402),
    ("cdn-static-assets.duckdns.org", 109010004),
];

pub(crate) const VULN_SIGS: &[Signature] = &[
    sig!(
        "SSH User Authentication Brute Force Attempt",
        40015,
        "brute-force",
        "high"
    ),
    sig!(
        "HTTP Unauthorized Brute Force Attack",
        40031,
        "brute-force",
        "high"
    ),
    sig!(
        "OpenSSL TLS Heartbeat Information Disclosure Vulnerability - Heartbleed",
        36416,
        "info-leak",
        "critical"
    ),
    sig!(
        "Apache Log4j Remote Code Execution Vulnerability",
        91991,
        "code-execution",
        "critical"
    ),
    sig!(
        "Spring Core Remote Code Execution Vulnerability",
        92393,
        "code-execution",
        "critical"
    ),
    sig!(
        "Bash Remote Code Execution Vulnerability - Shellshock",
        36729,
        "code-execution",
        "critical"
    ),
    sig!(
        "HTTP Directory Traversal Request Attempt",
        30844,
        "info-leak",
        "medium"
    ),
    sig!(
        "HTTP /etc/passwd Access Attempt",
        35107,
        "info-leak",
        "high"
    ),
    sig!(
        "Microsoft RPC Endpoint Mapper Detection",
        30845,
        "info-leak",
        "informational"
    ),
    sig!(
        "Nmap Scripting Engine Detection",
        58433,
        "hacktool",
        "medium"
    ),
    sig!("HTTP SQL Injection Attempt", 38195, "sql-injection", "high"),
    sig!(
        "Redis Unauthorized Access Remote Code Execution Vulnerability",
        90745,
        "code-execution",
        "high"
    ),
];

pub(crate) const VIRUS_SIGS: &[Signature] = &[
    sig!("Eicar Test File", 100000, "virus", "medium"),
    sig!("Virus/Win32.WGeneric.bxqcym", 309274215, "virus", "medium"),
    sig!("Trojan/Win32.emotet.bnv", 299836271, "virus", "high"),
    sig!("Trojan/Linux.mirai.a", 257093042, "virus", "high"),
    sig!("Trojan/Linux.xorddos.b", 274630184, "virus", "high"),
    sig!("Coinminer/Linux.xmrig.c", 325410077, "virus", "medium"),
    sig!("Backdoor/Linux.tsunami.d", 292011864, "virus", "high"),
];

pub(crate) const WILDFIRE_VIRUS_SIGS: &[Signature] = &[
    sig!("Virus/Linux.WGeneric.dqbmrp", 3134227, "virus", "high"),
    sig!("Virus/Win32.WGeneric.eatxvh", 3301588, "virus", "high"),
    sig!("Trojan/Linux.kinsing.abk", 3298714, "virus", "high"),
    sig!("Trojan/JS.nemucod.cwz", 3275510, "virus", "medium"),
];

pub(crate) const FILE_SIGS: &[Signature] = &[
    sig!("Windows Executable (EXE)", 52020, "unknown", "low"),
    sig!(
        "Adobe Portable Document Format (PDF)",
        52021,
        "unknown",
        "low"
    ),
    sig!("Hypertext Preprocessor PHP File", 52256, "unknown", "low"),
    sig!("Temporary TMP File", 52228, "unknown", "low"),
    sig!("Email Link", 52143, "unknown", "low"),
    sig!("ELF File", 52133, "unknown", "low"),
    sig!("Bourne Shell Script", 52208, "unknown", "low"),
];

pub(crate) const SCAN_SIGS: &[Signature] = &[
    sig!("TCP Port scan", 8001, "scan", "high"),
    sig!("Host Sweep", 8002, "scan", "high"),
    sig!("UDP Port scan", 8003, "scan", "high"),
];

pub(crate) const FLOOD_SIGS: &[Signature] = &[
    sig!("TCP Flood", 8501, "flood", "critical"),
    sig!("UDP Flood", 8502, "flood", "critical"),
    sig!("ICMP Flood", 8503, "flood", "critical"),
];

pub(crate) const PACKET_SIGS: &[Signature] = &[
    sig!("IP Spoofing", 8701, "protocol-anomaly", "medium"),
    sig!("Ping of Death Attack", 8702, "protocol-anomaly", "medium"),
    sig!("Teardrop Attack", 8706, "protocol-anomaly", "medium"),
    sig!("TCP SYN With Data", 8720, "protocol-anomaly", "low"),
];

pub(crate) const DATA_SIGS: &[Signature] = &[
    sig!("Credit Card Numbers", 60001, "info-leak", "high"),
    sig!("Social Security Numbers", 60002, "info-leak", "high"),
    sig!("AWS Access Key ID", 60010, "info-leak", "medium"),
    sig!("Private Key (PEM)", 60012, "info-leak", "critical"),
];

/// WildFire verdicts (the Category column of wildfire lines) with their
/// severity; `malicious` dominates what gets logged.
pub(crate) const WILDFIRE_VERDICTS: &[(&str, &str)] = &[
    ("malicious", "high"),
    ("malicious", "medium"),
    ("grayware", "low"),
    ("phishing", "medium"),
    ("benign", "informational"),
];

/// Files analysed by WildFire: name, file type, `Name(id)` of the type.
pub(crate) const WILDFIRE_FILES: &[(&str, &str, &str, u64)] = &[
    ("kubectl", "elf", "ELF File", 52133),
    (
        "helm-v3.14.4-linux-amd64.tar.gz",
        "archive",
        "GZIP Archive",
        52172,
    ),
    ("install.sh", "script", "Bourne Shell Script", 52208),
    (
        "Invoice_2024-03.pdf",
        "pdf",
        "Adobe Portable Document Format (PDF)",
        52021,
    ),
    ("svchost.exe", "pe", "Windows Executable (EXE)", 52020),
    (
        "report.docm",
        "ms-office",
        "Microsoft Word 2007+ Document",
        52160,
    ),
];

/// File names for virus / file / data lines. Some hold commas or quotes, as
/// real downloads and attachments do, to exercise quoting.
pub(crate) const FILE_NAMES: &[&str] = &[
    "eicar.com",
    "invoice_8812.zip",
    "update.sh",
    "xmrig",
    "kworkerds",
    "payload.elf",
    "setup.js",
    "x86_64",
    "export_customers.csv",
    "SylinkDrop.exe",
    "checksync.php",
    "temp.tmp",
];

/// Rarely used names that need quoting care: a comma, doubled quotes.
pub(crate) const AWKWARD_FILE_NAMES: &[&str] = &[
    "Invoice 2024, final.pdf.exe",
    "report \"Q3\".xlsx",
    "cards, Q3 \"export\".csv",
];

/// Rarely used URLs that need quoting care.
pub(crate) const AWKWARD_URLS: &[&str] = &[
    "cdn.shop.example/combo?f=a.css,b.css,c.css",
    "www.shop.example/search?q=\"red shoes\"",
    "contextual.media.net/checksync.php?&vsSync=1&cs=1&prvid=41,108,141,181",
    "www.example.com/string/\"hello\"",
];

/// Email for file/data lines over SMTP: sender, subject, recipient.
pub(crate) const EMAILS: &[(&str, &str, &str)] = &[
    (
        "From: \"Billing\" <billing@vendor-invoices.example>",
        "Sub: Invoice 4411, overdue",
        "To: <accounts@shop.example>",
    ),
    (
        "From: <noreply@payments.example>",
        "Sub: Your payout report",
        "To: <finance@shop.example>",
    ),
    (
        "From: \"IT Support\" <helpdesk@it-support-desk.example>",
        "Sub: Password expiry, action needed",
        "To: <ops@shop.example>",
    ),
];

/// Security rules, shared by every firewall (Panorama pushes one UUID per
/// rule to all of them).
pub(crate) const RULES: &[&str] = &[
    "allow-egress-web",
    "allow-egress-saas",
    "allow-dns",
    "allow-east-west",
    "allow-data-tier",
    "inbound-web",
    "deny-egress-default",
    "interzone-default",
];

pub(crate) const RULE_EGRESS_WEB: usize = 0;
pub(crate) const RULE_EGRESS_SAAS: usize = 1;
pub(crate) const RULE_DNS: usize = 2;
pub(crate) const RULE_EAST_WEST: usize = 3;
pub(crate) const RULE_DATA: usize = 4;
pub(crate) const RULE_INBOUND: usize = 5;
pub(crate) const RULE_DENY_EGRESS: usize = 6;
pub(crate) const RULE_INTERZONE: usize = 7;

/// Zones and the interfaces of a CN-Series firewall.
pub(crate) const ZONE_PODS: &str = "k8s-pods";
pub(crate) const ZONE_INTERNET: &str = "untrust";
pub(crate) const ZONE_DMZ: &str = "k8s-ingress";
pub(crate) const IF_PODS: &str = "ethernet1/2";
pub(crate) const IF_INTERNET: &str = "ethernet1/1";
pub(crate) const IF_DMZ: &str = "ethernet1/3";

/// The log forwarding profile (`Log Action`).
pub(crate) const LOG_PROFILE: &str = "forward-to-riposte";

/// TRAFFIC end reasons for allowed sessions, by transport.
pub(crate) const END_REASONS_TCP: &[&str] = &[
    "tcp-fin",
    "tcp-fin",
    "tcp-fin",
    "tcp-fin",
    "tcp-rst-from-client",
    "tcp-rst-from-server",
    "aged-out",
];
pub(crate) const END_REASONS_UDP: &[&str] = &["aged-out"];
