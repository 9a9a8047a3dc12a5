package waypoint

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Labels and values on the objects the controller manages.
const (
	// LabelGatewayName names the Gateway on its pods, Deployment and
	// Service (the Gateway API's own label).
	LabelGatewayName = "gateway.networking.k8s.io/gateway-name"
	// LabelManaged marks every object the controller applies; its
	// informers select on it.
	LabelManaged = "gateway.istio.io/managed"
	// ManagedValue is LabelManaged's value (Istio's, so tools that know
	// Istio's waypoints recognise ours).
	ManagedValue = "istio.io-mesh-controller"
	// LabelDataplaneMode keeps the waypoint out of the mesh's capture:
	// it speaks HBONE itself.
	LabelDataplaneMode = "istio.io/dataplane-mode"
	// ManagedSelector selects the objects the controller manages.
	ManagedSelector = LabelManaged + "=" + ManagedValue
)

// Ports of the waypoint's Service and container.
const (
	PortHBONE   = 15008
	PortStatus  = 15021
	PortMetrics = 15020
	// AppProtocolHBONE is the appProtocol of the Service's 15008 port.
	AppProtocolHBONE = "istio.io/hbone"
)

// Paths inside the waypoint container.
const (
	tokenDir     = "/var/run/secrets/tokens"
	tokenFile    = tokenDir + "/istio-token"
	rootCertDir  = "/var/run/secrets/istio"
	rootCertFile = rootCertDir + "/root-cert.pem"
	// TokenAudience is the projected token's audience, the CA's (as
	// ztunnel's).
	TokenAudience = "istio-ca"
	// RootCertConfigMap is the ConfigMap istiod-lite publishes in every
	// namespace with the mesh root certificate.
	RootCertConfigMap = "istio-ca-root-cert"
	containerName     = "waypoint"
	nonRootID         = 65532
)

// ownerRef makes gw the controlling owner of what the controller applies.
func ownerRef(gw *gatewayv1.Gateway) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().
		WithAPIVersion(gatewayv1.GroupVersion.String()).
		WithKind("Gateway").
		WithName(gw.Name).
		WithUID(gw.UID).
		WithController(true)
}

// objectLabels are the labels of the ServiceAccount, Deployment and
// Service of gw.
func objectLabels(gw *gatewayv1.Gateway) map[string]string {
	return map[string]string{
		LabelGatewayName:               gw.Name,
		LabelManaged:                   ManagedValue,
		"app.kubernetes.io/name":       gw.Name,
		"app.kubernetes.io/component":  "waypoint",
		"app.kubernetes.io/part-of":    "weft",
		"app.kubernetes.io/managed-by": FieldManager,
	}
}

// podLabels are the waypoint pods' labels.
func podLabels(gw *gatewayv1.Gateway) map[string]string {
	l := objectLabels(gw)
	l[LabelDataplaneMode] = "none"
	l["service.istio.io/canonical-name"] = gw.Name
	return l
}

// ServiceAccount is the waypoint's identity: its SPIFFE principal is
// spiffe://<trust domain>/ns/<ns>/sa/<gw>. It gets no API token.
func ServiceAccount(gw *gatewayv1.Gateway) *corev1ac.ServiceAccountApplyConfiguration {
	return corev1ac.ServiceAccount(gw.Name, gw.Namespace).
		WithLabels(objectLabels(gw)).
		WithOwnerReferences(ownerRef(gw)).
		WithAutomountServiceAccountToken(false)
}

// Service fronts the waypoint pods; its cluster IP is the Gateway's
// address.
func Service(gw *gatewayv1.Gateway) *corev1ac.ServiceApplyConfiguration {
	port := func(name string, p int32, proto string) *corev1ac.ServicePortApplyConfiguration {
		return corev1ac.ServicePort().WithName(name).WithProtocol(corev1.ProtocolTCP).
			WithPort(p).WithTargetPort(intstr.FromInt32(p)).WithAppProtocol(proto)
	}
	return corev1ac.Service(gw.Name, gw.Namespace).
		WithLabels(objectLabels(gw)).
		WithOwnerReferences(ownerRef(gw)).
		WithSpec(corev1ac.ServiceSpec().
			WithType(corev1.ServiceTypeClusterIP).
			WithSelector(map[string]string{LabelGatewayName: gw.Name}).
			WithPorts(
				port("mesh", PortHBONE, AppProtocolHBONE),
				port("status-port", PortStatus, "http"),
				port("http-metrics", PortMetrics, "http"),
			))
}

// Deployment runs the waypoint proxy for gw with cfg's image and
// control-plane addresses.
func Deployment(gw *gatewayv1.Gateway, cfg Config) *appsv1ac.DeploymentApplyConfiguration {
	fieldEnv := func(name, path string) *corev1ac.EnvVarApplyConfiguration {
		return corev1ac.EnvVar().WithName(name).WithValueFrom(corev1ac.EnvVarSource().
			WithFieldRef(corev1ac.ObjectFieldSelector().WithFieldPath(path)))
	}
	value := func(name, v string) *corev1ac.EnvVarApplyConfiguration {
		return corev1ac.EnvVar().WithName(name).WithValue(v)
	}
	cport := func(name string, p int32) *corev1ac.ContainerPortApplyConfiguration {
		return corev1ac.ContainerPort().WithName(name).WithContainerPort(p).WithProtocol(corev1.ProtocolTCP)
	}
	container := corev1ac.Container().
		WithName(containerName).
		WithImage(cfg.Image).
		WithImagePullPolicy(corev1.PullIfNotPresent).
		WithPorts(cport("mesh", PortHBONE), cport("status-port", PortStatus), cport("http-metrics", PortMetrics)).
		WithEnv(
			fieldEnv("POD_NAME", "metadata.name"),
			fieldEnv("POD_NAMESPACE", "metadata.namespace"),
			fieldEnv("POD_IP", "status.podIP"),
			fieldEnv("INSTANCE_IP", "status.podIP"),
			fieldEnv("NODE_NAME", "spec.nodeName"),
			fieldEnv("SERVICE_ACCOUNT", "spec.serviceAccountName"),
			value("GATEWAY_NAME", gw.Name),
			value("XDS_ADDRESS", cfg.XDSAddress),
			value("CA_ADDRESS", cfg.CAAddress),
			value("ROOT_CERT", rootCertFile),
			value("TOKEN_FILE", tokenFile),
			value("CLUSTER_ID", cfg.ClusterID),
			value("TRUST_DOMAIN", cfg.TrustDomain),
			value("DOMAIN_SUFFIX", cfg.DomainSuffix),
		).
		WithReadinessProbe(corev1ac.Probe().
			WithHTTPGet(corev1ac.HTTPGetAction().WithPath("/healthz/ready").WithPort(intstr.FromInt32(PortStatus))).
			WithPeriodSeconds(2).WithTimeoutSeconds(2).WithFailureThreshold(3)).
		WithResources(corev1ac.ResourceRequirements().
			WithRequests(corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}).
			WithLimits(corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")})).
		WithSecurityContext(corev1ac.SecurityContext().
			WithRunAsNonRoot(true).
			WithRunAsUser(nonRootID).
			WithRunAsGroup(nonRootID).
			WithAllowPrivilegeEscalation(false).
			WithReadOnlyRootFilesystem(true).
			WithPrivileged(false).
			WithCapabilities(corev1ac.Capabilities().WithDrop("ALL"))).
		WithVolumeMounts(
			corev1ac.VolumeMount().WithName("istio-token").WithMountPath(tokenDir).WithReadOnly(true),
			corev1ac.VolumeMount().WithName("istiod-ca-cert").WithMountPath(rootCertDir).WithReadOnly(true),
			corev1ac.VolumeMount().WithName("tmp").WithMountPath("/tmp"),
		)

	if cfg.Network != "" {
		container.WithEnv(value("NETWORK", cfg.Network))
	}
	pod := corev1ac.PodSpec().
		WithServiceAccountName(gw.Name).
		WithAutomountServiceAccountToken(false).
		WithTerminationGracePeriodSeconds(30).
		WithNodeSelector(map[string]string{"kubernetes.io/os": "linux"}).
		WithSecurityContext(corev1ac.PodSecurityContext().
			WithRunAsNonRoot(true).
			WithRunAsUser(nonRootID).
			WithRunAsGroup(nonRootID).
			WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))).
		WithContainers(container).
		WithVolumes(
			corev1ac.Volume().WithName("istio-token").WithProjected(corev1ac.ProjectedVolumeSource().
				WithSources(corev1ac.VolumeProjection().WithServiceAccountToken(corev1ac.ServiceAccountTokenProjection().
					WithAudience(TokenAudience).WithExpirationSeconds(43200).WithPath("istio-token")))),
			corev1ac.Volume().WithName("istiod-ca-cert").WithConfigMap(corev1ac.ConfigMapVolumeSource().WithName(RootCertConfigMap)),
			corev1ac.Volume().WithName("tmp").WithEmptyDir(corev1ac.EmptyDirVolumeSource()),
		)

	return appsv1ac.Deployment(gw.Name, gw.Namespace).
		WithLabels(objectLabels(gw)).
		WithOwnerReferences(ownerRef(gw)).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(1).
			WithRevisionHistoryLimit(3).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{LabelGatewayName: gw.Name})).
			WithStrategy(appsv1ac.DeploymentStrategy().WithType(appsv1.RollingUpdateDeploymentStrategyType).
				WithRollingUpdate(appsv1ac.RollingUpdateDeployment().
					WithMaxSurge(intstr.FromInt32(1)).WithMaxUnavailable(intstr.FromInt32(0)))).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(podLabels(gw)).
				WithAnnotations(map[string]string{
					"prometheus.io/scrape": "true",
					"prometheus.io/port":   "15020",
					"prometheus.io/path":   "/metrics",
				}).
				WithSpec(pod)))
}
