output "namespace" {
  description = "Namespace Riposte runs in."
  value       = helm_release.riposte.namespace
}

output "release_name" {
  description = "The Helm release."
  value       = helm_release.riposte.name
}

output "syslog_service" {
  description = "The Service the firewall's syslog server profile points at (port 514 UDP/TCP, 6514 TLS)."
  value       = "${local.fullname}-syslog.${var.namespace}.svc"
}

output "api_service" {
  description = "The API Service: webhooks, actions, EDLs at /v1/edl/{list}, metrics."
  value       = "http://${local.fullname}-api.${var.namespace}.svc:8080"
}

output "chart_version" {
  description = "The chart version installed."
  value       = helm_release.riposte.metadata.version
}
