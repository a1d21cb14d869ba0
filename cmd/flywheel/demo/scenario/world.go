package scenario

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// world generates card payments and whether each is fraud, seeded. Fraud depends on the
// features the model sees: a fraudulent payment is large against the card's own average,
// often abroad and online, and comes in bursts. Drift changes the world in two ways at once:
// legitimate amounts grow and the merchant mix moves (data drift), and a new fraud pattern
// appears — normal-looking online gift-card purchases at home (concept drift), which the
// first model has never seen.
type world struct {
	rng     *rand.Rand
	cards   []card
	drifted atomic.Bool
	seq     int
	run     string
	// newCards: live payments sometimes come from cards never seen before
	newCards bool
}

type card struct {
	id    string
	avg   float64 // typical amount
	home  string
	burst int // payments left in a fraudster's burst
}

// payment is one generated transaction and its truth.
type payment struct {
	ID, Card, Merchant, Category, Country, Channel string
	Amount                                         float64
	At                                             time.Time
	Fraud                                          bool
}

var (
	homes      = []string{"DE", "FR", "NL", "ES", "IT"}
	abroad     = []string{"US", "BR", "NG", "RU", "CN", "GB", "TR"}
	categories = []string{"grocery", "fuel", "restaurants", "apparel", "electronics", "travel", "pharmacy", "gift_cards"}
	// merchant mix before and after the drift (weights per category above)
	mixBefore = []float64{30, 15, 20, 12, 6, 5, 10, 2}
	mixAfter  = []float64{14, 8, 12, 10, 20, 14, 6, 16}
)

func newWorld(seed uint64, cards int, run string) *world {
	w := &world{rng: rand.New(rand.NewPCG(seed, 0x5eed)), run: run}
	for i := range cards {
		w.cards = append(w.cards, card{id: fmt.Sprintf("card-%05d", i), avg: math.Exp(3 + 0.8*w.rng.NormFloat64()),
			home: homes[w.rng.IntN(len(homes))]})
	}
	return w
}

func (w *world) isDrifted() bool { return w.drifted.Load() }

func (w *world) pick(weights []float64) int {
	total := 0.0
	for _, x := range weights {
		total += x
	}
	r := w.rng.Float64() * total
	for i, x := range weights {
		if r < x {
			return i
		}
		r -= x
	}
	return len(weights) - 1
}

// next is a payment at time at.
func (w *world) next(at time.Time) payment {
	c := &w.cards[w.rng.IntN(len(w.cards))]
	if w.newCards && w.rng.Float64() < 0.01 {
		// a card never seen before: the feature store has nothing for it yet (defaults)
		c = &card{id: fmt.Sprintf("new-%s-%06d", w.run, w.seq), avg: math.Exp(3 + 0.8*w.rng.NormFloat64()), home: homes[w.rng.IntN(len(homes))]}
	}
	w.seq++
	p := payment{ID: fmt.Sprintf("tx-%s-%07d", w.run, w.seq), Card: c.id, At: at, Country: c.home,
		Merchant: fmt.Sprintf("m-%03d", w.rng.IntN(400))}
	mix := mixBefore
	drifted := w.drifted.Load()
	if drifted {
		mix = mixAfter
	}
	p.Category = categories[w.pick(mix)]
	p.Channel = []string{"pos", "ecom", "atm"}[w.pick([]float64{60, 30, 10})]
	legit := c.avg * math.Exp(0.45*w.rng.NormFloat64())
	if drifted {
		legit *= 1.8
	}
	p.Amount = legit
	switch {
	case c.burst > 0 || w.rng.Float64() < 0.02:
		// the old pattern: a burst of large payments, mostly online and abroad
		p.Fraud = true
		if c.burst > 0 {
			c.burst--
		} else {
			c.burst = w.rng.IntN(3)
		}
		p.Amount = c.avg * (3 + 5*w.rng.Float64())
		if w.rng.Float64() < 0.7 {
			p.Channel = "ecom"
		}
		if w.rng.Float64() < 0.6 {
			p.Country = abroad[w.rng.IntN(len(abroad))]
		}
	case drifted && p.Category == "gift_cards" && p.Channel != "atm" && w.rng.Float64() < 0.45:
		// the new pattern: ordinary-looking gift cards bought online at home
		p.Fraud = true
		p.Channel = "ecom"
	}
	if w.rng.Float64() < 0.03 && !p.Fraud {
		p.Country = abroad[w.rng.IntN(len(abroad))] // travellers
	}
	p.Amount = math.Round(p.Amount*100) / 100
	return p
}

func (p payment) event() string {
	return fmt.Sprintf(`{"transaction_id":%q,"card_id":%q,"amount":%.2f,"currency":"EUR","merchant_id":%q,"merchant_category":%q,"country":%q,"channel":%q,"event_time":%q}`,
		p.ID, p.Card, p.Amount, p.Merchant, p.Category, p.Country, p.Channel, p.At.UTC().Format(time.RFC3339Nano))
}

func (p payment) label(at time.Time) string {
	return fmt.Sprintf(`{"transaction_id":%q,"card_id":%q,"is_fraud":%v,"event_time":%q}`, p.ID, p.Card, p.Fraud, at.UTC().Format(time.RFC3339Nano))
}

// instance is the prediction request for the payment: entity, request-time fields and the
// id its label will name.
func (p payment) instance() string {
	return fmt.Sprintf(`{"card_id":%q,"transaction_id":%q,"amount":%.2f,"merchant_category":%q,"channel":%q,"country":%q}`,
		p.Card, p.ID, p.Amount, p.Category, p.Channel, p.Country)
}

// cardOf is a card of the world, picked by n.
func (w *world) cardOf(n int) string { return w.cards[n%len(w.cards)].id }
