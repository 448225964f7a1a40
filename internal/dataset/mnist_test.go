package dataset

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestMNISTFactsAgreeWithEachOther checks the declared facts against each other: the counts add up to the size of
// the training part, there is one count per class, and MNISTCreated is the time MNISTVersion records.
func TestMNISTFactsAgreeWithEachOther(t *testing.T) {
	sum := 0
	for _, n := range MNISTTrainCounts() {
		sum += n
	}
	if sum != MNISTTrainExamples {
		t.Errorf("MNISTTrainCounts add up to %d; want MNISTTrainExamples, %d", sum, MNISTTrainExamples)
	}
	if got, want := len(MNISTTrainCounts()), len(MNISTClasses()); got != want {
		t.Errorf("%d counts for %d classes", got, want)
	}
	stamp := strings.Split(MNISTVersion, "-")[1]
	created, err := time.Parse("20060102150405", stamp)
	if err != nil {
		t.Fatal(err)
	}
	if !created.Equal(MNISTCreated) {
		t.Errorf("MNISTCreated is %v; MNISTVersion says %v", MNISTCreated, created)
	}
}

// TestMNISTFactsMatchTheFiles checks the declared facts against the training files themselves.
func TestMNISTFactsMatchTheFiles(t *testing.T) {
	dir, err := FindMNIST(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadMNIST(dir, Train)
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, len(s.Classes))
	for _, y := range s.Y {
		counts[y]++
	}
	if s.Len() != MNISTTrainExamples || s.Rows != MNISTSide || s.Cols != MNISTSide ||
		fmt.Sprint(s.Classes) != fmt.Sprint(MNISTClasses()) || fmt.Sprint(counts) != fmt.Sprint(MNISTTrainCounts()) {
		t.Errorf("the files hold %d examples of %dx%d, classes %v counted %v; the facts say %d of %dx%[7]d, %v, %v",
			s.Len(), s.Cols, s.Rows, s.Classes, counts, MNISTTrainExamples, MNISTSide, MNISTClasses(), MNISTTrainCounts())
	}
}
