package nodeagent

import "testing"

func TestKeyedMutexTryLock(t *testing.T) {
	var k keyedMutex
	unlock := k.lock("a")
	if _, ok := k.tryLock("a"); ok {
		t.Fatal("tryLock took a held key")
	}
	u2, ok := k.tryLock("b")
	if !ok {
		t.Fatal("tryLock of a free key failed")
	}
	u2()
	unlock()
	u3, ok := k.tryLock("a")
	if !ok {
		t.Fatal("tryLock after unlock failed")
	}
	u3()
	if len(k.locks) != 0 {
		t.Fatalf("entries left: %v", k.locks)
	}
}
