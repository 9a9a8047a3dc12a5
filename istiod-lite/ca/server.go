package ca

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"sync"

	"google.golang.org/grpc"
	pb "istio.io/api/security/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
)

// Server is the CA. Build it with New, register it on a gRPC server with
// Register, serve that gRPC server with ServerTLSConfig, and call Run.
// It is safe for concurrent use.
type Server struct {
	cfg       Config
	kube      kubernetes.Interface
	log       *slog.Logger
	authority *authority
	authn     *tokenAuthenticator
	imp       *impersonator
	metrics   *metrics
	serving   *servingCert

	factory   informers.SharedInformerFactory // namespaces, and pods without Config.Pods
	cmFactory informers.SharedInformerFactory // root configmaps only
	publisher *rootPublisher

	runOnce sync.Once
}

// New loads the root of trust (creating the self-signed root Secret if
// needed, which needs ctx for the API calls) and prepares the informers.
// Nothing runs in the background until Run.
func New(ctx context.Context, cfg Config, kube kubernetes.Interface) (*Server, error) {
	if kube == nil {
		return nil, fmt.Errorf("ca: a kubernetes client is required")
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("ca config: %w", err)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	auth, err := loadAuthority(ctx, kube, &cfg)
	if err != nil {
		return nil, fmt.Errorf("ca root of trust: %w", err)
	}
	m.rootExp.Set(float64(auth.root.NotAfter.Unix()))
	s := &Server{
		cfg:       cfg,
		kube:      kube,
		log:       cfg.Logger,
		authority: auth,
		authn:     newTokenAuthenticator(kube, cfg.Audience, cfg.TokenCacheTTL, cfg.Now),
		metrics:   m,
	}
	s.serving = &servingCert{s: s}

	s.factory = informers.NewSharedInformerFactoryWithOptions(kube, cfg.ResyncPeriod)
	pods := cfg.Pods
	if pods == nil {
		if pods, err = newInformerPods(s.factory.Core().V1().Pods().Informer()); err != nil {
			return nil, err
		}
	}
	s.imp = &impersonator{ztunnels: cfg.ZtunnelServiceAccounts, pods: pods}
	namespaces := s.factory.Core().V1().Namespaces().Informer()

	s.cmFactory = informers.NewSharedInformerFactoryWithOptions(kube, cfg.ResyncPeriod,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "metadata.name=" + RootConfigMapName }))
	cms := s.cmFactory.Core().V1().ConfigMaps().Informer()
	s.publisher, err = newRootPublisher(kube, auth.rootPE, namespaces, cms, cfg.Logger)
	if err != nil {
		return nil, err
	}
	cfg.Logger.Info("ca ready to sign", "root_source", auth.source, "trust_domain", cfg.TrustDomain,
		"root_serial", auth.root.SerialNumber.Text(16), "root_not_after", auth.root.NotAfter)
	return s, nil
}

// Register adds the IstioCertificateService to gs.
func (s *Server) Register(gs grpc.ServiceRegistrar) {
	pb.RegisterIstioCertificateServiceServer(gs, &service{s: s})
}

// Run starts the informers, publishes the root ConfigMap in every
// namespace and keeps it in sync until ctx ends. Impersonated requests are
// refused with Unavailable until the pod cache has synced. Run returns nil
// when ctx ends, and an error if called twice.
func (s *Server) Run(ctx context.Context) error {
	first := false
	s.runOnce.Do(func() { first = true })
	if !first {
		return fmt.Errorf("ca: Run called twice")
	}
	s.factory.Start(ctx.Done())
	s.cmFactory.Start(ctx.Done())
	defer s.factory.Shutdown()
	defer s.cmFactory.Shutdown()
	for typ, ok := range s.factory.WaitForCacheSync(ctx.Done()) {
		if !ok && ctx.Err() == nil {
			return fmt.Errorf("ca: sync %v informer", typ)
		}
	}
	for typ, ok := range s.cmFactory.WaitForCacheSync(ctx.Done()) {
		if !ok && ctx.Err() == nil {
			return fmt.Errorf("ca: sync %v informer", typ)
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	s.log.Info("ca informers synced")
	s.publisher.run(ctx)
	return nil
}

// Ready reports whether the pod cache has synced, so impersonated requests
// can be decided.
func (s *Server) Ready() bool { return s.imp.pods.HasSynced() }

// RootPEM returns the root certificate as PEM, as published in the
// istio-ca-root-cert ConfigMaps.
func (s *Server) RootPEM() []byte { return append([]byte(nil), s.authority.rootPE...) }

// Root returns the root certificate.
func (s *Server) Root() *x509.Certificate { return s.authority.root }
