package kafkax_test

import (
	"testing"

	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/testenv"
)

func TestMaxMessageBytesFromTheBroker(t *testing.T) {
	cfg := testenv.Kafka(t)
	admin := kafkax.NewAdmin(cfg)
	defer admin.Close()
	topic := testenv.Unique(t, "limits")
	testenv.Topics(t, cfg, topic)
	n, err := admin.MaxMessageBytes(testenv.Context(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the dev broker says %d", n)
	if n < 1024 { // the dev broker answers DescribeConfigs; 0 would mean it was not asked
		t.Fatalf("implausible limit %d", n)
	}
}
