package pdpclient

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// w3c is what the client sends when the program set no global propagator,
// so the PDP's spans join the caller's trace out of the box.
var w3c = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// defaultPropagator defers to the global propagator when one is set (at call
// time, so one set after New counts) and sends W3C traceparent otherwise.
type defaultPropagator struct{}

func (defaultPropagator) current() propagation.TextMapPropagator {
	if g := otel.GetTextMapPropagator(); len(g.Fields()) > 0 {
		return g
	}
	return w3c
}

func (p defaultPropagator) Inject(ctx context.Context, carrier propagation.TextMapCarrier) {
	p.current().Inject(ctx, carrier)
}

func (p defaultPropagator) Extract(ctx context.Context, carrier propagation.TextMapCarrier) context.Context {
	return p.current().Extract(ctx, carrier)
}

func (p defaultPropagator) Fields() []string { return p.current().Fields() }
