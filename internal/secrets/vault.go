package secrets

import (
	"context"
	"errors"
	"fmt"

	"github.com/podflow/podflow/internal/store"
)

// Variable is a variable as users see it.
type Variable struct {
	Key         string `json:"key"`
	Value       string `json:"value"`
	Description string `json:"description,omitempty"`
	// Secret: marked secret by the user, or a key that looks sensitive.
	Secret bool `json:"is_secret,omitempty"`
}

// Vault reads and writes variables and connections in the database,
// encrypting on the way in and decrypting on the way out.
//
// What is encrypted: a connection's password and extra always; a variable
// always when a key is configured, and a secret variable (marked, or with a
// sensitive key) is refused without one. Nothing secret is ever written in
// clear, and a row that cannot be decrypted is an error naming it.
type Vault struct {
	Store  *store.Store
	Keys   *Keyring // nil: no key configured
	Masker *Masker  // decides which variable keys are sensitive
}

func variableLabel(key string) string { return "variable/" + key }
func connLabel(id, field string) string {
	return "connection/" + id + "/" + field
}

// SetVariable creates or replaces a variable.
func (v *Vault) SetVariable(ctx context.Context, in Variable) error {
	if in.Key == "" {
		return errors.New("variable key is empty")
	}
	row, err := v.sealVariable(in)
	if err != nil {
		return err
	}
	return v.Store.PutVariable(ctx, row)
}

func (v *Vault) sealVariable(in Variable) (store.VariableRow, error) {
	secret := in.Secret || v.Masker.IsSensitive(in.Key)
	row := store.VariableRow{Key: in.Key, Value: in.Value, Description: in.Description, Secret: in.Secret}
	if v.Keys == nil && !secret {
		return row, nil
	}
	ct, err := v.Keys.Encrypt(in.Value, variableLabel(in.Key))
	if err != nil {
		return row, fmt.Errorf("variable %q is secret and cannot be stored: %w", in.Key, err)
	}
	row.Value, row.Encrypted = ct, true
	return row, nil
}

func (v *Vault) openVariable(row store.VariableRow) (Variable, error) {
	out := Variable{Key: row.Key, Value: row.Value, Description: row.Description,
		Secret: row.Secret || v.Masker.IsSensitive(row.Key)}
	if row.Encrypted {
		plain, err := v.Keys.Decrypt(row.Value, variableLabel(row.Key))
		if err != nil {
			return out, fmt.Errorf("variable %q cannot be decrypted: %w", row.Key, err)
		}
		out.Value = plain
	}
	return out, nil
}

// Variable reads a variable; found is false when there is none.
func (v *Vault) Variable(ctx context.Context, key string) (Variable, bool, error) {
	row, err := v.Store.Variable(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return Variable{}, false, nil
	}
	if err != nil {
		return Variable{}, false, err
	}
	out, err := v.openVariable(row)
	return out, err == nil, err
}

// Variables reads every variable, decrypted; the first row that cannot be
// decrypted is the error.
func (v *Vault) Variables(ctx context.Context) ([]Variable, error) {
	rows, err := v.Store.Variables(ctx, false)
	if err != nil {
		return nil, err
	}
	out := make([]Variable, 0, len(rows))
	for _, r := range rows {
		o, err := v.openVariable(r)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// DeleteVariable deletes a variable (store.ErrNotFound when absent).
func (v *Vault) DeleteVariable(ctx context.Context, key string) error {
	return v.Store.DeleteVariable(ctx, key)
}

// SetConnection creates or replaces a connection.
func (v *Vault) SetConnection(ctx context.Context, c Connection) error {
	if c.ConnID == "" {
		return errors.New("connection id is empty")
	}
	if err := c.CheckExtra(); err != nil {
		return err
	}
	row, err := v.sealConnection(c)
	if err != nil {
		return err
	}
	return v.Store.PutConnection(ctx, row)
}

func (v *Vault) sealConnection(c Connection) (store.ConnectionRow, error) {
	row := store.ConnectionRow{ConnID: c.ConnID, Type: c.Type, Description: c.Description, Host: c.Host,
		Schema: c.Schema, Login: c.Login, Password: c.Password, Extra: c.Extra}
	if c.Port != 0 {
		p := c.Port
		row.Port = &p
	}
	if v.Keys == nil && c.Password == "" && c.Extra == "" {
		return row, nil
	}
	var err error
	if row.Password, err = v.Keys.Encrypt(c.Password, connLabel(c.ConnID, "password")); err != nil {
		return row, fmt.Errorf("connection %q has a password or extra and cannot be stored: %w", c.ConnID, err)
	}
	if row.Extra, err = v.Keys.Encrypt(c.Extra, connLabel(c.ConnID, "extra")); err != nil {
		return row, fmt.Errorf("connection %q: %w", c.ConnID, err)
	}
	row.Encrypted = true
	return row, nil
}

func (v *Vault) openConnection(row store.ConnectionRow) (Connection, error) {
	c := Connection{ConnID: row.ConnID, Type: row.Type, Description: row.Description, Host: row.Host,
		Schema: row.Schema, Login: row.Login, Password: row.Password, Extra: row.Extra}
	if row.Port != nil {
		c.Port = *row.Port
	}
	if row.Encrypted {
		var err error
		if c.Password, err = v.Keys.Decrypt(row.Password, connLabel(row.ConnID, "password")); err != nil {
			return c, fmt.Errorf("connection %q: password cannot be decrypted: %w", row.ConnID, err)
		}
		if c.Extra, err = v.Keys.Decrypt(row.Extra, connLabel(row.ConnID, "extra")); err != nil {
			return c, fmt.Errorf("connection %q: extra cannot be decrypted: %w", row.ConnID, err)
		}
	}
	return c, nil
}

// Connection reads a connection; found is false when there is none.
func (v *Vault) Connection(ctx context.Context, id string) (Connection, bool, error) {
	row, err := v.Store.Connection(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return Connection{}, false, nil
	}
	if err != nil {
		return Connection{}, false, err
	}
	c, err := v.openConnection(row)
	return c, err == nil, err
}

// Connections reads every connection, decrypted.
func (v *Vault) Connections(ctx context.Context) ([]Connection, error) {
	rows, err := v.Store.Connections(ctx, false)
	if err != nil {
		return nil, err
	}
	out := make([]Connection, 0, len(rows))
	for _, r := range rows {
		c, err := v.openConnection(r)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// DeleteConnection deletes a connection (store.ErrNotFound when absent).
func (v *Vault) DeleteConnection(ctx context.Context, id string) error {
	return v.Store.DeleteConnection(ctx, id)
}

// Rotation is what RotateKey did.
type Rotation struct {
	Variables, Connections int // rows re-encrypted under the primary key
	Unchanged              int // rows already under it
}

// RotateKey re-encrypts every variable and connection under the primary
// key, in one transaction holding their row locks: every row is decrypted
// first, and if any cannot be (an old key missing from the keyring, a wrong
// key), the error names it and nothing is written. Processes that still
// hold only the old key keep reading rows they read before until they get
// the new keyring; processes given "new,old" read both throughout.
func (v *Vault) RotateKey(ctx context.Context) (Rotation, error) {
	var r Rotation
	if v.Keys == nil {
		return r, ErrNoKey
	}
	primary := v.Keys.PrimaryID()
	err := v.Store.InTx(ctx, func(q store.Q) error {
		r = Rotation{}
		vars, err := q.Variables(ctx, true)
		if err != nil {
			return err
		}
		conns, err := q.Connections(ctx, true)
		if err != nil {
			return err
		}
		var newVars []store.VariableRow
		for _, row := range vars {
			// Every row is decrypted, also those already under the primary
			// key: a keyring whose primary is not the key the rows were
			// written with must fail here, not after the old key is gone.
			plain, err := v.openVariable(row)
			if err != nil {
				return err
			}
			if row.Encrypted && underKey(row.Value, primary) {
				r.Unchanged++
				continue
			}
			plain.Secret = row.Secret
			sealed, err := v.sealVariable(plain)
			if err != nil {
				return err
			}
			newVars = append(newVars, sealed)
		}
		var newConns []store.ConnectionRow
		for _, row := range conns {
			plain, err := v.openConnection(row)
			if err != nil {
				return err
			}
			if row.Encrypted && underKey(row.Password, primary) && underKey(row.Extra, primary) {
				r.Unchanged++
				continue
			}
			sealed, err := v.sealConnection(plain)
			if err != nil {
				return err
			}
			newConns = append(newConns, sealed)
		}
		for _, row := range newVars {
			if err := q.PutVariable(ctx, row); err != nil {
				return err
			}
		}
		for _, row := range newConns {
			if err := q.PutConnection(ctx, row); err != nil {
				return err
			}
		}
		r.Variables, r.Connections = len(newVars), len(newConns)
		return nil
	})
	return r, err
}

func underKey(ciphertext, id string) bool {
	got, err := KeyID(ciphertext)
	return err == nil && got == id
}

// SetVariables creates or replaces several variables in one transaction:
// every one is sealed first, so a secret that cannot be encrypted writes
// none of them.
func (v *Vault) SetVariables(ctx context.Context, in []Variable) error {
	rows := make([]store.VariableRow, 0, len(in))
	for _, x := range in {
		if x.Key == "" {
			return errors.New("variable key is empty")
		}
		row, err := v.sealVariable(x)
		if err != nil {
			return err
		}
		rows = append(rows, row)
	}
	return v.Store.InTx(ctx, func(q store.Q) error {
		for _, row := range rows {
			if err := q.PutVariable(ctx, row); err != nil {
				return err
			}
		}
		return nil
	})
}

// SetConnections creates or replaces several connections in one
// transaction, all sealed first.
func (v *Vault) SetConnections(ctx context.Context, in []Connection) error {
	rows := make([]store.ConnectionRow, 0, len(in))
	for _, c := range in {
		if c.ConnID == "" {
			return errors.New("connection id is empty")
		}
		if err := c.CheckExtra(); err != nil {
			return err
		}
		row, err := v.sealConnection(c)
		if err != nil {
			return err
		}
		rows = append(rows, row)
	}
	return v.Store.InTx(ctx, func(q store.Q) error {
		for _, row := range rows {
			if err := q.PutConnection(ctx, row); err != nil {
				return err
			}
		}
		return nil
	})
}
