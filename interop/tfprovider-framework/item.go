package main

import (
	"context"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

type item struct {
	settings *settings
}

type itemModel struct {
	ID     types.String `tfsdk:"id"`
	Name   types.String `tfsdk:"name"`
	Upper  types.String `tfsdk:"upper"`
	Length types.Int64  `tfsdk:"length"`
}

// itemModelV0 is the state of schema version 0, before "title" became "name".
type itemModelV0 struct {
	ID    types.String `tfsdk:"id"`
	Title types.String `tfsdk:"title"`
}

func newItem() resource.Resource { return &item{} }

func (r *item) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_item"
}

func (r *item) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Version: 1,
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				Required:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"upper":  schema.StringAttribute{Computed: true},
			"length": schema.Int64Attribute{Computed: true},
		},
	}
}

func (r *item) Configure(_ context.Context, req resource.ConfigureRequest, _ *resource.ConfigureResponse) {
	if s, ok := req.ProviderData.(*settings); ok {
		r.settings = s
	}
}

func (r *item) prefix() string {
	if r.settings == nil {
		return ""
	}
	return r.settings.prefix
}

func (r *item) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var name types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("name"), &name)...)
	if !name.IsNull() && !name.IsUnknown() && name.ValueString() == "" {
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Empty name", "name must not be empty.")
	}
}

func (r *item) fill(m *itemModel) {
	name := m.Name.ValueString()
	m.ID = types.StringValue(r.prefix() + name)
	m.Upper = types.StringValue(strings.ToUpper(name))
	m.Length = types.Int64Value(int64(len(name)))
}

func (r *item) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m itemModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	r.fill(&m)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// Read reports the state as it is: the item lives only in the state.
func (r *item) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m itemModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// Update never changes a value: name forces replacement.
func (r *item) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var m itemModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	r.fill(&m)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *item) Delete(context.Context, resource.DeleteRequest, *resource.DeleteResponse) {}

func (r *item) UpgradeState(context.Context) map[int64]resource.StateUpgrader {
	return map[int64]resource.StateUpgrader{
		0: {
			PriorSchema: &schema.Schema{
				Attributes: map[string]schema.Attribute{
					"id":    schema.StringAttribute{Computed: true},
					"title": schema.StringAttribute{Required: true},
				},
			},
			StateUpgrader: func(ctx context.Context, req resource.UpgradeStateRequest, resp *resource.UpgradeStateResponse) {
				var old itemModelV0
				resp.Diagnostics.Append(req.State.Get(ctx, &old)...)
				if resp.Diagnostics.HasError() {
					return
				}
				name := old.Title.ValueString()
				m := itemModel{
					ID:     old.ID,
					Name:   old.Title,
					Upper:  types.StringValue(strings.ToUpper(name)),
					Length: types.Int64Value(int64(len(name))),
				}
				resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
			},
		},
	}
}
