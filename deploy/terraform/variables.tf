variable "release_name" {
  description = "Helm release name (and the prefix of every object)."
  type        = string
  default     = "riposte"
}

variable "namespace" {
  description = "Namespace Riposte runs in (protected from its own actions)."
  type        = string
  default     = "riposte"
}

variable "create_namespace" {
  description = "Create the namespace (labelled for the NetworkPolicies that select it)."
  type        = bool
  default     = true
}

variable "chart" {
  description = "The chart: a path (the default, this repository's chart) or a chart name in chart_repository."
  type        = string
  default     = null
}

variable "chart_repository" {
  description = "Helm repository URL when chart is a name; null for a local path."
  type        = string
  default     = null
}

variable "chart_version" {
  description = "Chart version when installing from a repository."
  type        = string
  default     = null
}

variable "image_repository" {
  description = "The Riposte image built from deploy/Dockerfile."
  type        = string
  default     = "ghcr.io/example/riposte"
}

variable "image_tag" {
  description = "Image tag; empty: the chart's appVersion."
  type        = string
  default     = ""
}

variable "image_digest" {
  description = "Pin the image by digest (sha256:...); wins over the tag."
  type        = string
  default     = ""

  validation {
    condition     = var.image_digest == "" || can(regex("^sha256:[0-9a-f]{64}$", var.image_digest))
    error_message = "image_digest must be empty or sha256:<64 hex digits>."
  }
}

variable "replicas" {
  description = "Replicas of the all-in-one role; more than one needs postgres_url."
  type        = number
  default     = 1
}

variable "api_tokens" {
  description = "API tokens as SHA-256 hashes (riposte hash-token --generate): name, sha256, scopes (read, act, admin, ingest)."
  type = list(object({
    name   = string
    sha256 = string
    scopes = list(string)
  }))
  default = []
}

variable "secrets_name" {
  description = "An existing Secret holding the SOAR credentials, webhook signing secrets and firewall API keys the targets name (mounted at /etc/riposte/secrets)."
  type        = string
  default     = ""
}

variable "soar_targets" {
  description = "Notification targets: name, format (webhook, xsoar, splunk_soar, thehive, slack), url, auth {kind, username, header_name, secret_key}, signing_secret_keys, notify_on, tags."
  type = list(object({
    name                = string
    format              = optional(string, "webhook")
    url                 = string
    auth                = optional(object({ kind = string, username = optional(string), header_name = optional(string), secret_key = optional(string) }))
    signing_secret_keys = optional(list(string), [])
    notify_on           = optional(list(string), ["notify"])
    tags                = optional(list(string), [])
  }))
  default = []
}

variable "public_url" {
  description = "Riposte's external URL, for links and approval URLs in notifications."
  type        = string
  default     = ""
}

variable "firewall_targets" {
  description = "PAN-OS firewalls or Panorama: name, url, key_secret_key (the API key's key in secrets_name), vsys, target (serial through Panorama)."
  type = list(object({
    name           = string
    url            = string
    key_secret_key = string
    vsys           = optional(string)
    target         = optional(string)
  }))
  default = []
}

variable "firewall_namespace" {
  description = "Where CN-Series runs: allowed to send syslog, protected from actions."
  type        = string
  default     = "kube-system"
}

variable "syslog_service_type" {
  description = "ClusterIP (CN-Series in the cluster), LoadBalancer or NodePort."
  type        = string
  default     = "ClusterIP"

  validation {
    condition     = contains(["ClusterIP", "LoadBalancer", "NodePort"], var.syslog_service_type)
    error_message = "syslog_service_type must be ClusterIP, LoadBalancer or NodePort."
  }
}

variable "syslog_allowed_sources" {
  description = "CIDRs allowed to send syslog; empty: everyone the NetworkPolicy lets in."
  type        = list(string)
  default     = []
}

variable "syslog_tls_secret" {
  description = "A kubernetes.io/tls Secret: enables syslog over TLS on 6514 when set."
  type        = string
  default     = ""
}

variable "egress_backend" {
  description = "How block_egress is expressed: networkpolicy, cilium or calico."
  type        = string
  default     = "networkpolicy"

  validation {
    condition     = contains(["networkpolicy", "cilium", "calico"], var.egress_backend)
    error_message = "egress_backend must be networkpolicy, cilium or calico."
  }
}

variable "postgres_url" {
  description = "postgres:// URL (no password) of a shared store; empty: SQLite in the pod."
  type        = string
  default     = ""
}

variable "postgres_password_secret" {
  description = "Secret holding the PostgreSQL password (key \"password\")."
  type        = string
  default     = ""
}

variable "rabbitmq_url" {
  description = "The amqp(s):// URL of the broker, user and password in it: splits Riposte into ingest and worker roles when set (the chart then keeps its config in a Secret)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "service_monitor" {
  description = "Create a Prometheus Operator ServiceMonitor."
  type        = bool
  default     = false
}

variable "extra_values" {
  description = "More chart values (YAML documents), merged after the ones above."
  type        = list(string)
  default     = []
}
