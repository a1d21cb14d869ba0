package demo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Transaction is the example domain's payment event.
type Transaction struct {
	TransactionID    string  `json:"transaction_id"`
	CardID           string  `json:"card_id"`
	Amount           float64 `json:"amount"`
	Currency         string  `json:"currency"`
	MerchantID       string  `json:"merchant_id"`
	MerchantCategory string  `json:"merchant_category"`
	Country          string  `json:"country"`
	Channel          string  `json:"channel"`
	EventTime        string  `json:"event_time"`
}

// Generator makes plausible card transactions, reproducibly for a seed.
type Generator struct {
	rng   *rand.Rand
	run   string
	cards int
	n     int
}

// NewGenerator returns a generator whose transaction ids start with run, over cards cards.
func NewGenerator(seed uint64, run string, cards int) *Generator {
	return &Generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), run: run, cards: cards}
}

var (
	categories = []string{"grocery", "fuel", "restaurant", "electronics", "travel", "pharmacy", "fashion"}
	countries  = []string{"DE", "DE", "DE", "FR", "NL", "ES", "IT", "US", "GB"}
	channels   = []string{"pos", "pos", "pos", "ecom", "ecom", "atm"}
	currencies = map[string]string{"US": "USD", "GB": "GBP"}
)

// Next returns a transaction at time at.
func (g *Generator) Next(at time.Time) Transaction {
	g.n++
	country := countries[g.rng.IntN(len(countries))]
	currency := currencies[country]
	if currency == "" {
		currency = "EUR"
	}
	return Transaction{
		TransactionID:    fmt.Sprintf("%s-%06d", g.run, g.n),
		CardID:           fmt.Sprintf("c-%03d", g.rng.IntN(g.cards)),
		Amount:           math.Round(math.Exp(g.rng.NormFloat64()*0.9+3.2)*100) / 100,
		Currency:         currency,
		MerchantID:       fmt.Sprintf("m-%03d", g.rng.IntN(200)),
		MerchantCategory: categories[g.rng.IntN(len(categories))],
		Country:          country,
		Channel:          channels[g.rng.IntN(len(channels))],
		EventTime:        at.UTC().Format(time.RFC3339Nano),
	}
}

// Malformed returns the i-th of a few kinds of broken transaction JSON.
func Malformed(i int, valid Transaction) string {
	switch i % 5 {
	case 0:
		return fmt.Sprintf(`{"transaction_id":%q,"card_id":%q,"amount":-12.5,"currency":"EUR","merchant_id":"m-1","merchant_category":"grocery","country":"DE","channel":"pos","event_time":%q}`,
			valid.TransactionID+"-neg", valid.CardID, valid.EventTime)
	case 1:
		return fmt.Sprintf(`{"transaction_id":%q,"card_id":%q,"amount":3,"currency":"EURO","merchant_id":"m-1","merchant_category":"grocery","country":"DE","channel":"fax","event_time":%q}`,
			valid.TransactionID+"-enum", valid.CardID, valid.EventTime)
	case 2:
		return fmt.Sprintf(`{"transaction_id":%q,"amount":3,"currency":"EUR","merchant_id":"m-1","merchant_category":"grocery","country":"DE","channel":"pos","event_time":%q}`,
			valid.TransactionID+"-nocard", valid.EventTime)
	case 3:
		return fmt.Sprintf(`{"transaction_id":%q,"card_id":%q,"amount":"3","currency":"EUR","merchant_id":"m-1","merchant_category":"grocery","country":"DE","channel":"pos","event_time":"yesterday"}`,
			valid.TransactionID+"-types", valid.CardID)
	default:
		return `{"transaction_id": "broken", "card_id": `
	}
}
