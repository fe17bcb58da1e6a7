// Package policies compiles and evaluates flowgate's Rego policies with OPA.
package policies
