package config

import "testing"

func TestMaxMapLength(t *testing.T) {
	c, err := loadWith(t, "workers: 2\n", nil)
	if err != nil || c.MaxMapLength != DefaultMaxMapLength {
		t.Errorf("default: %v %v", c.MaxMapLength, err)
	}
	if c, err = loadWith(t, "max_map_length: 5000\n", nil); err != nil || c.MaxMapLength != 5000 {
		t.Errorf("file: %v %v", c.MaxMapLength, err)
	}
	if c, err = loadWith(t, "max_map_length: 5000\n", map[string]string{"PODFLOW_MAX_MAP_LENGTH": "7"}); err != nil || c.MaxMapLength != 7 {
		t.Errorf("env over file: %v %v", c.MaxMapLength, err)
	}
}
