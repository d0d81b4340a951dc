package api

import "github.com/podflow/podflow/internal/auth"

// roleNone marks the operations anyone may call: logging in, the version,
// health and the spec.
const roleNone auth.Role = "none"

// operationRoles is the single table of what each operation needs. The spec
// says the same in each operation's x-podflow-role, and a test keeps the two
// equal; New refuses a spec operation missing here.
var operationRoles = map[string]auth.Role{
	"createToken": roleNone,
	"getVersion":  roleNone,
	"getHealth":   roleNone,
	"getOpenAPI":  roleNone,

	"getDags":              auth.RoleViewer,
	"getDag":               auth.RoleViewer,
	"getDagSource":         auth.RoleViewer,
	"getDagVersions":       auth.RoleViewer,
	"getDagStructure":      auth.RoleViewer,
	"getDagGrid":           auth.RoleViewer,
	"getImportErrors":      auth.RoleViewer,
	"getDagRuns":           auth.RoleViewer,
	"getDagRun":            auth.RoleViewer,
	"waitDagRun":           auth.RoleViewer,
	"getTaskInstances":     auth.RoleViewer,
	"getTaskInstance":      auth.RoleViewer,
	"getTaskInstanceTries": auth.RoleViewer,
	"getLog":               auth.RoleViewer,
	"getXcomEntries":       auth.RoleViewer,
	"getXcomEntry":         auth.RoleViewer,
	"getPools":             auth.RoleViewer,
	"getPool":              auth.RoleViewer,
	"getEventLogs":         auth.RoleViewer,
	"getAssets":            auth.RoleViewer,
	"getAssetEvents":       auth.RoleViewer,
	"getMe":                auth.RoleViewer,
	"getRenderedFields":    auth.RoleViewer,
	"getPodEvents":         auth.RoleViewer,
	"getDagRunAlerts":      auth.RoleViewer,

	// Variables and connections: op reads them with secret values as ***,
	// viewer not at all.
	"getVariables":   auth.RoleOp,
	"getVariable":    auth.RoleOp,
	"getConnections": auth.RoleOp,
	"getConnection":  auth.RoleOp,

	"patchDag":           auth.RoleOp,
	"triggerDagRun":      auth.RoleOp,
	"patchDagRun":        auth.RoleOp,
	"deleteDagRun":       auth.RoleOp,
	"clearDagRun":        auth.RoleOp,
	"patchTaskInstance":  auth.RoleOp,
	"clearTaskInstances": auth.RoleOp,

	"postPool":   auth.RoleAdmin,
	"patchPool":  auth.RoleAdmin,
	"deletePool": auth.RoleAdmin,

	"postVariable":     auth.RoleAdmin,
	"deleteVariable":   auth.RoleAdmin,
	"postConnection":   auth.RoleAdmin,
	"deleteConnection": auth.RoleAdmin,
}
