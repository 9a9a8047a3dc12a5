package gatewayclass

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1client "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/typed/apis/v1"
)

const (
	// Name is the class waypoints are Gateways of.
	Name = "istio-waypoint"
	// ControllerName is the controller Istio names for its istio-waypoint
	// class; istiod-lite only accepts a class that names it.
	ControllerName gatewayv1.GatewayController = "istio.io/mesh-controller"
	// Description is the class's spec.description (the CRD allows at most
	// 64 characters).
	Description = "Weft waypoints, per-namespace L7 proxies"
	// AcceptedMessage is the message of the Accepted condition it sets.
	AcceptedMessage = "Handled by Weft istiod-lite"
)

// Client is the part of the Gateway API clientset the keeper uses;
// GatewayV1() of the typed clientset satisfies it.
type Client = gatewayv1client.GatewayClassesGetter

// Desired returns the GatewayClass istiod-lite creates when none exists.
func Desired() *gatewayv1.GatewayClass {
	desc := Description
	return &gatewayv1.GatewayClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:   Name,
			Labels: map[string]string{"app.kubernetes.io/part-of": "weft", "app.kubernetes.io/managed-by": "istiod-lite"},
		},
		Spec: gatewayv1.GatewayClassSpec{ControllerName: ControllerName, Description: &desc},
	}
}

// Ensure makes one pass: it creates the class if it is absent (another
// replica creating it first is not an error) and, when the class names
// ControllerName, sets its Accepted condition to True for the current
// generation. A class of the same name owned by another controller is
// left untouched and reported as an error. The write of the status is
// guarded by the object's resourceVersion, so concurrent replicas
// converge: the loser gets a conflict and finds the condition set on its
// next pass. Ensure returns an error (to be retried) when the Gateway API
// CRD is not served yet.
func Ensure(ctx context.Context, c Client, now func() time.Time) error {
	classes := c.GatewayClasses()
	gc, err := classes.Get(ctx, Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		gc, err = classes.Create(ctx, Desired(), metav1.CreateOptions{FieldManager: "istiod-lite"})
		if apierrors.IsAlreadyExists(err) {
			gc, err = classes.Get(ctx, Name, metav1.GetOptions{})
		}
	}
	if err != nil {
		return fmt.Errorf("gatewayclass %s: %w", Name, err)
	}
	if gc.Spec.ControllerName != ControllerName {
		return fmt.Errorf("gatewayclass %s names controller %q, not %q; leaving it alone", Name, gc.Spec.ControllerName, ControllerName)
	}
	if accepted(gc) {
		return nil
	}
	gc = gc.DeepCopy()
	meta.SetStatusCondition(&gc.Status.Conditions, metav1.Condition{
		Type:               string(gatewayv1.GatewayClassConditionStatusAccepted),
		Status:             metav1.ConditionTrue,
		Reason:             string(gatewayv1.GatewayClassReasonAccepted),
		Message:            AcceptedMessage,
		ObservedGeneration: gc.Generation,
		LastTransitionTime: metav1.NewTime(now()),
	})
	if _, err := classes.UpdateStatus(ctx, gc, metav1.UpdateOptions{FieldManager: "istiod-lite"}); err != nil {
		return fmt.Errorf("gatewayclass %s status: %w", Name, err)
	}
	return nil
}

// accepted reports whether the class is already Accepted by us for its
// current generation.
func accepted(gc *gatewayv1.GatewayClass) bool {
	c := meta.FindStatusCondition(gc.Status.Conditions, string(gatewayv1.GatewayClassConditionStatusAccepted))
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == gc.Generation &&
		c.Reason == string(gatewayv1.GatewayClassReasonAccepted) && c.Message == AcceptedMessage
}

// Config tunes Run. Zero values take the defaults.
type Config struct {
	// Log receives failures and the first success.
	Log *slog.Logger
	// MinRetry and MaxRetry bound the doubling wait after a failed pass
	// (defaults 1s and 30s): the CRD may take a while to be established.
	MinRetry, MaxRetry time.Duration
	// Resync is the wait between passes once the class is in place
	// (default 1m), so that a deleted class comes back.
	Resync time.Duration
	// Now is the clock for condition times (default time.Now).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.MinRetry <= 0 {
		c.MinRetry = time.Second
	}
	if c.MaxRetry < c.MinRetry {
		c.MaxRetry = max(30*time.Second, c.MinRetry)
	}
	if c.Resync <= 0 {
		c.Resync = time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Run keeps the class until ctx ends: it calls Ensure, retrying failures
// with a doubling wait, and repeats every Resync once it has succeeded.
// Failures are logged, never returned, so that a cluster without the
// Gateway API never stops istiod-lite; Run returns nil when ctx ends.
func Run(ctx context.Context, c Client, cfg Config) error {
	cfg = cfg.withDefaults()
	wait := cfg.MinRetry
	ok := false
	for {
		if err := Ensure(ctx, c, cfg.Now); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			cfg.Log.Warn("gatewayclass not in place yet; retrying", "class", Name, "in", wait, "err", err)
			ok = false
		} else {
			if !ok {
				cfg.Log.Info("gatewayclass in place and accepted", "class", Name, "controller", ControllerName)
			}
			ok = true
		}
		next := cfg.Resync
		if !ok {
			next = wait
			wait = min(2*wait, cfg.MaxRetry)
		} else {
			wait = cfg.MinRetry
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
