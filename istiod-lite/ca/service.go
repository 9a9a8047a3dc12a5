package ca

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	pb "istio.io/api/security/v1alpha1"

	"github.com/weftmesh/weft/pkg/identity"
)

// service implements IstioCertificateService.
type service struct {
	pb.UnimplementedIstioCertificateServiceServer
	s *Server
}

var _ pb.IstioCertificateServiceServer = (*service)(nil)

// CreateCertificate authenticates the caller, decides which identity it may
// have, checks the CSR against it and signs. Every refusal carries a status
// whose message names the problem.
func (svc *service) CreateCertificate(ctx context.Context, req *pb.IstioCertificateRequest) (*pb.IstioCertificateResponse, error) {
	s := svc.s
	start := time.Now()
	resp, kind, reason, err := s.createCertificate(ctx, req)
	if err != nil {
		s.metrics.failures.WithLabelValues(reason).Inc()
		s.log.Info("certificate refused", "reason", reason, "error", status.Convert(err).Message())
		return nil, err
	}
	s.metrics.issued.WithLabelValues(kind).Inc()
	s.metrics.latency.Observe(time.Since(start).Seconds())
	return resp, nil
}

// createCertificate returns the response, the issued kind (own or
// impersonated) or the failure reason label, and a status error.
func (s *Server) createCertificate(ctx context.Context, req *pb.IstioCertificateRequest) (*pb.IstioCertificateResponse, string, string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	token, err := bearerToken(md)
	if err != nil {
		return nil, "", reasonNoToken, status.Error(codes.Unauthenticated, err.Error())
	}
	if s.cfg.ClusterID != "" {
		if ids := md.Get("clusterid"); len(ids) > 0 && ids[0] != s.cfg.ClusterID {
			return nil, "", reasonClusterID, status.Errorf(codes.Unauthenticated, "clusterid %q is not this cluster (%q)", ids[0], s.cfg.ClusterID)
		}
	}
	c, err := s.authn.authenticate(ctx, token)
	if err != nil {
		if errors.Is(err, errUnauthenticated) {
			return nil, "", reasonUnauthenticated, status.Error(codes.Unauthenticated, err.Error())
		}
		return nil, "", reasonTokenReview, status.Errorf(codes.Unavailable, "cannot authenticate the caller: %v", err)
	}

	csr, csrID, err := identity.ParseCSR([]byte(req.GetCsr()))
	if err != nil {
		var ce *identity.CSRError
		reason := "csr_malformed"
		if errors.As(err, &ce) {
			reason = string(ce.Reason)
		}
		return nil, "", reason, status.Error(codes.InvalidArgument, err.Error())
	}
	if csrID.TrustDomain != s.cfg.TrustDomain {
		return nil, "", reasonTrustDomain, status.Errorf(codes.InvalidArgument, "csr asks for %s in unknown trust domain %q; this CA signs only for %q", csrID, csrID.TrustDomain, s.cfg.TrustDomain)
	}

	own := identity.ID{TrustDomain: s.cfg.TrustDomain, Namespace: c.Namespace, ServiceAccount: c.ServiceAccount}
	target, kind := own, "own"
	if imp := impersonatedIdentity(req); imp != "" {
		id, err := identity.ParseID(imp)
		if err != nil {
			return nil, "", reasonImpersonation, status.Errorf(codes.InvalidArgument, "%s metadata: %v", ImpersonatedIdentityKey, err)
		}
		if id.TrustDomain != s.cfg.TrustDomain {
			return nil, "", reasonTrustDomain, status.Errorf(codes.InvalidArgument, "%s %s is in unknown trust domain %q; this CA signs only for %q", ImpersonatedIdentityKey, id, id.TrustDomain, s.cfg.TrustDomain)
		}
		if id != own {
			if err := s.imp.allow(c, id); err != nil {
				if errors.Is(err, errNotSynced) {
					return nil, "", reasonNotReady, status.Error(codes.Unavailable, err.Error())
				}
				return nil, "", reasonImpersonation, status.Error(codes.PermissionDenied, err.Error())
			}
			target, kind = id, "impersonated"
		}
	}
	if csrID != target {
		return nil, "", reasonIdentity, status.Errorf(codes.PermissionDenied, "csr asks for %s but the caller (service account %s) may only get %s", csrID, c, target)
	}

	validity, err := s.validity(req.GetValidityDuration())
	if err != nil {
		return nil, "", reasonValidity, status.Error(codes.InvalidArgument, err.Error())
	}
	chain, err := s.authority.sign(leafRequest{pub: csr.PublicKey, uri: target.URL(), validity: validity}, s.cfg.Now())
	if err != nil {
		return nil, "", reasonSign, status.Errorf(codes.Internal, "sign certificate for %s: %v", target, err)
	}
	resp := &pb.IstioCertificateResponse{CertChain: make([]string, 0, len(chain))}
	for _, cert := range chain {
		resp.CertChain = append(resp.CertChain, string(identity.EncodeCertificate(cert)))
	}
	s.log.Debug("certificate issued", "identity", target.String(), "caller", c.String(), "node", c.NodeName, "serial", chain[0].SerialNumber.Text(16))
	return resp, kind, "", nil
}

// validity bounds a requested validity in seconds: 0 means the default,
// longer than the maximum is shortened to it, negative is an error.
func (s *Server) validity(seconds int64) (time.Duration, error) {
	switch {
	case seconds < 0:
		return 0, fmt.Errorf("validity_duration %d is negative", seconds)
	case seconds == 0:
		return s.cfg.DefaultValidity, nil
	case seconds > int64(s.cfg.MaxValidity/time.Second):
		return s.cfg.MaxValidity, nil
	default:
		return time.Duration(seconds) * time.Second, nil
	}
}

func bearerToken(md metadata.MD) (string, error) {
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return "", errors.New("no authorization metadata: send \"authorization: Bearer <token>\" with a token for audience istio-ca")
	}
	scheme, token, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(token) == "" {
		return "", errors.New("authorization metadata is not \"Bearer <token>\"")
	}
	return strings.TrimSpace(token), nil
}

func impersonatedIdentity(req *pb.IstioCertificateRequest) string {
	f := req.GetMetadata().GetFields()[ImpersonatedIdentityKey]
	return f.GetStringValue()
}
