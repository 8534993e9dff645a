locals {
  chart = coalesce(var.chart, "${path.module}/../helm/riposte")

  values = {
    replicaCount = var.replicas
    image = {
      repository = var.image_repository
      tag        = var.image_tag
      digest     = var.image_digest
    }
    syslog = {
      allowedSources = var.syslog_allowed_sources
      tls = {
        enabled    = var.syslog_tls_secret != ""
        secretName = var.syslog_tls_secret
      }
    }
    api = { tokens = var.api_tokens }
    kubernetes = {
      egress = { backend = var.egress_backend }
    }
    guardrails = { firewallNamespace = var.firewall_namespace }
    store = {
      postgres = {
        enabled        = var.postgres_url != ""
        url            = var.postgres_url
        passwordSecret = var.postgres_password_secret
      }
    }
    rabbitmq = {
      enabled = var.rabbitmq_url != ""
      url     = var.rabbitmq_url
    }
    notify = {
      publicUrl = var.public_url
      targets = [for t in var.soar_targets : merge(
        {
          name              = t.name
          format            = t.format
          url               = t.url
          signingSecretKeys = t.signing_secret_keys
          notifyOn          = t.notify_on
          tags              = t.tags
        },
        t.auth == null ? {} : {
          auth = { for k, v in {
            kind       = t.auth.kind
            username   = t.auth.username
            headerName = t.auth.header_name
            secretKey  = t.auth.secret_key
          } : k => v if v != null }
        },
      )]
    }
    firewall = {
      targets = [for f in var.firewall_targets : { for k, v in {
        name         = f.name
        url          = f.url
        keySecretKey = f.key_secret_key
        vsys         = f.vsys
        target       = f.target
      } : k => v if v != null }]
    }
    secrets        = { existingSecret = var.secrets_name }
    service        = { syslog = { type = var.syslog_service_type } }
    serviceMonitor = { enabled = var.service_monitor }
  }
}

resource "kubernetes_namespace_v1" "riposte" {
  count = var.create_namespace ? 1 : 0

  metadata {
    name = var.namespace
    labels = {
      "app.kubernetes.io/name" = "riposte"
      # Riposte's own namespace is never a target of its own actions.
      "riposte.io/exempt" = "true"
    }
  }
}

resource "helm_release" "riposte" {
  name             = var.release_name
  namespace        = var.namespace
  create_namespace = false
  chart            = local.chart
  repository       = var.chart_repository
  version          = var.chart_version

  values = concat([yamlencode(local.values)], var.extra_values)

  # Wait for /readyz (the pod index synced) before Terraform reports success.
  wait            = true
  timeout         = 300
  atomic          = true
  cleanup_on_fail = true

  depends_on = [kubernetes_namespace_v1.riposte]
}

locals {
  # The chart's full name: the release name when it already says "riposte".
  fullname = strcontains(var.release_name, "riposte") ? var.release_name : "${var.release_name}-riposte"
}
