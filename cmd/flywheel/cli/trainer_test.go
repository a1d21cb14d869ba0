package cli_test

import (
	"strings"
	"testing"
)

func TestModelsValidateExitsNonZeroNamingFailingGates(t *testing.T) {
	url := fakeRegistry(t, exchange{method: "POST", path: "/v1/models/fraud/validate", body: `{"candidate":2}`, auth: "Bearer env-token",
		reply: `{"model":"fraud","candidate":2,"champion":1,"passed":false,"holdout_rows":120,
			"gates":[{"metric":"auc","candidate":0.51,"champion":0.93,"passed":false,"failures":["threshold: 0.51 is not >= 0.7 (off by 0.19)"]},
			         {"metric":"log_loss","candidate":0.4,"passed":true}]}`})
	out, err := runCLI(t, map[string]string{"FLYWHEEL_TRAINER_URL": url, "FLYWHEEL_TOKEN": "env-token"}, "models", "validate", "fraud", "--candidate", "2")
	if err == nil || !strings.Contains(err.Error(), "fails the gates: auc") {
		t.Fatalf("want a failure naming auc, got %v", err)
	}
	for _, want := range []string{"against champion version 1", "FAIL: threshold: 0.51 is not >= 0.7", "log_loss"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestModelsValidatePasses(t *testing.T) {
	url := fakeRegistry(t, exchange{method: "POST", path: "/v1/models/fraud/validate", body: `{"candidate":3}`, auth: "Bearer env-token",
		reply: `{"passed":true,"holdout_rows":10,"gates":[{"metric":"auc","candidate":0.9,"passed":true}]}`})
	if _, err := runCLI(t, map[string]string{"FLYWHEEL_TRAINER_URL": url, "FLYWHEEL_TOKEN": "env-token"}, "models", "validate", "fraud", "--candidate", "3"); err != nil {
		t.Fatal(err)
	}
}

func TestTrainFollowsTheRun(t *testing.T) {
	url := fakeRegistry(t,
		exchange{method: "POST", path: "/v1/train", body: `{"model":"fraud","reason":""}`, auth: "Bearer env-token", status: 202,
			reply: `{"outcome":"started","run":{"id":"tr-1","model":"fraud","stage":"queued"}}`},
		exchange{method: "GET", path: "/v1/train/runs/tr-1", auth: "Bearer env-token",
			reply: `{"run":{"id":"tr-1","model":"fraud","stage":"succeeded","promoted":true,"model_version":4,"registry_run_id":"r9","dataset_version":"ds-1"}}`})
	out, err := runCLI(t, map[string]string{"FLYWHEEL_TRAINER_URL": url, "FLYWHEEL_TOKEN": "env-token"}, "train", "fraud")
	if err != nil || !strings.Contains(out, "version 4 of fraud promoted to champion") {
		t.Fatalf("%v\n%s", err, out)
	}
}

func TestRunsReproduceFailsWhenHashesDiffer(t *testing.T) {
	url := fakeRegistry(t, exchange{method: "POST", path: "/v1/runs/r9/reproduce", body: `{}`, auth: "Bearer env-token",
		reply: `{"run_id":"r9","original_sha256":"aa","retrained_sha256":"bb","identical":false,"rows":5}`})
	_, err := runCLI(t, map[string]string{"FLYWHEEL_TRAINER_URL": url, "FLYWHEEL_TOKEN": "env-token"}, "runs", "reproduce", "r9")
	if err == nil || !strings.Contains(err.Error(), "did not reproduce") {
		t.Fatalf("want a failure, got %v", err)
	}
}

func TestTrainerUnreachableSaysHowToStartIt(t *testing.T) {
	_, err := runCLI(t, map[string]string{"FLYWHEEL_TRAINER_URL": "http://127.0.0.1:1"}, "train", "fraud")
	if err == nil || !strings.Contains(err.Error(), "make up") || !strings.Contains(err.Error(), "FLYWHEEL_TRAINER_URL") {
		t.Fatalf("want an error naming how to start or point at the trainer, got %v", err)
	}
}
